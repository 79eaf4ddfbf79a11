"""The load wing: the Locust plugin that journals every hit, collects, checks live and concludes.

    $ locust -f bench/locustfile.py --headless -u 16 -t 60s --host http://127.0.0.1:8000 --chaos-rate 1

Modules: ``options`` (the plugin's options, refused up front when bad),
``journal`` (one process's events), ``collect`` (workers stream,
the master accounts), ``live`` (formation samples and the live check),
``conclude`` (the final check, the run-proved-nothing rules, the artifacts),
``webui`` (the Consistency tab, the --html banner), ``dashboard`` (the
Formation page: its routes and buttons), ``board`` (its cards), ``bad_instance``
(the HIT_MODE=local instance it adds), ``shapes`` (load shapes),
``plugin`` (the Conductor and ``install``), ``run`` (one run, from its start
to its verdict, interrupted or not), ``users`` (the base of the journaled
users), ``visitors`` and ``uploaders`` (the session and upload workloads'
users), ``tries`` (a keyed request tried until its answer is final). It imports the verdict and chaos
wings and web's contract modules, and, for a web-UI run's report.html at Stop,
bench.harness.report; the harness never imports it.
"""
