"""The harness wing: the formation runners behind ``scripts/check``, their hosts, and the HTML report.

    $ scripts/check --web 4 --duration 60          # python -m bench.harness
    $ python -m bench.harness.report reports/<run> # rebuild a report from a run folder

Modules: ``check`` (the command: formation, Locust, verdict, report, cleanup),
``formation`` (the local ``honcho start`` formation), ``hosts`` and ``netns``
(the same formation on network-namespace hosts), ``frontdoor`` (nginx or HAProxy
in place of the proxy), ``launch`` (single redis, web and proxy processes on
free ports, for the tests and the benchmarks), ``report`` (report.html),
``story`` (the report's settings sentence and conclusion paragraph),
``timeline`` (its picture: fault bands, a lane per instance),
``screenshot`` (docs/ pictures). It starts Locust as a process, so it imports
the verdict and chaos wings' vocabulary but never the load wing.
"""
