"""The probe wing: tells whether any Procfile web app keeps state in its processes (scripts/probe APP_DIR).

    $ scripts/probe examples/memory-records        # python -m bench.probe; factor6 probe once pip-installed

Modules: ``command`` (the command: spec, instances, proxy, run, verdict, report), ``spec`` (the Procfile and
factor6.toml read into frozen values; ``tomlines`` finds the line of a refused key), ``steps`` (a step's
request, placeholders, captures and checks), ``instances`` (each instance a machine of its own: port, disk,
/tmp), ``formation`` (the instances as the run sees them, journaled in the chaos vocabulary), ``run``
(visitors writing and reading back under the chaos plan), ``exchange`` (one request and its answer),
``history`` (the writes and reads a run saw), ``verdict`` (the checker: a history to a three-valued verdict),
``zeroconf`` (the probes run with no factor6.toml), ``report`` (report.html). It imports the harness wing
(how processes start, the signal queue, the report's table), the verdict wing's model and labels, and the
chaos wing's vocabulary; never the load wing: it runs no Locust.
"""
