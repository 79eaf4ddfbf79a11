"""The benchmarks wing: scripts whose figures go in BENCHMARKS.md, each with the command that reproduces them.

    $ .venv/bin/python -m bench.benchmarks.checker      # checker throughput and memory
    $ .venv/bin/python -m bench.benchmarks.proxy        # this proxy against nginx and a direct backend
    $ .venv/bin/python -m bench.benchmarks.chaos        # ten minutes of kills against calm
    $ .venv/bin/python -m bench.benchmarks.autoscale    # spike capacity and p95 with and without autoscaling
    $ .venv/bin/python -m bench.benchmarks.backing      # redis-kill every 5 s, per REDIS_PERSISTENCE

``stats`` holds the one percentile and median they all use. Benchmarks may
import every other wing; nothing imports them.
"""
