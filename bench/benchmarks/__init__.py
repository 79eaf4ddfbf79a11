"""The benchmarks wing: scripts whose figures go in BENCHMARKS.md, each with the command that reproduces them.

    $ .venv/bin/python -m bench.benchmarks.checker      # checker throughput and memory
    $ .venv/bin/python -m bench.benchmarks.proxy        # this proxy against nginx and a direct backend
    $ .venv/bin/python -m bench.benchmarks.chaos        # ten minutes of kills against calm
    $ .venv/bin/python -m bench.benchmarks.autoscale    # spike capacity and p95 with and without autoscaling
    $ .venv/bin/python -m bench.benchmarks.network      # latency, loss and partitions between --hosts hosts (root)
    $ .venv/bin/python -m bench.benchmarks.workloads    # sessions per store under chaos; uploads of 1 and 10 MB
    $ .venv/bin/python -m bench.benchmarks.frontdoors   # nginx, HAProxy and this proxy under chaos: verdicts
    $ .venv/bin/python -m bench.benchmarks.scaling      # hits/s, p99 and efficiency for N = 1..16 (docs/scaling.png)
    $ .venv/bin/python -m bench.benchmarks.exactly_once # keyed hits against keyless, and the script against INCR
    $ .venv/bin/python -m bench.benchmarks.backing      # redis-kill every 5 s, per REDIS_PERSISTENCE
    $ .venv/bin/python -m bench.benchmarks.orchestrators  # honcho and a Docker Swarm side by side (root)
    $ .venv/bin/python -m bench.benchmarks.probe examples/stateless-redis   # scripts/probe, start to verdict

``stats`` holds the one percentile and median they all use; ``wrk`` runs wrk. Benchmarks may
import every other wing; nothing imports them.
"""
