"""The harness wing: the formation runners behind ``scripts/check``, their hosts, and the HTML report.

    $ scripts/check --web 4 --duration 60          # python -m bench.harness
    $ python -m bench.harness.report reports/<run> # rebuild a report from a run folder

Modules: ``check`` (the command: formation, Locust, verdict, report, cleanup),
``options`` (its arguments and environment, read once into the specs), ``model`` (the
specs, the ``Formation`` protocol every kind of formation implements, and the table of kinds),
``formation`` (the local ``honcho start`` formation), ``hosts`` and ``netns``
(the same formation on network-namespace hosts), ``replicated`` (a Valkey primary, replicas and Sentinels),
``frontdoor`` (nginx or HAProxy in place of the proxy), ``engine`` (a Docker engine of the harness's own),
``swarm`` (the formation as a Swarm stack, or under docker-compose) and ``swarm_autoscale`` (the autoscale
policy acting through Docker), ``launch`` (single redis, web and proxy processes on
free ports, for the tests and the benchmarks), ``report`` (report.html),
``story`` (the report's settings sentence and conclusion paragraph),
``timeline`` (its picture: fault bands, a lane per instance), ``outages`` (the backing service's outages
in it), ``screenshot`` (docs/ pictures). It starts Locust as a process, so it imports
the verdict and chaos wings' vocabulary but never the load wing.
"""
