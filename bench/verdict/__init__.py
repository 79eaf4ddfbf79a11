"""The verdict wing: the pure checkers, one per workload, their sources, the run record and the one rendering.

    from bench.verdict import checker, render
    from bench.verdict.sources import Source, read_journals, read_redis

Modules: ``checker`` (pure: history and ledger in, a three-valued Verdict out),
``sessions`` and ``uploads`` (the other workloads' checkers, over ``ops``, the
typed events paired), ``workloads`` (one checker per workload, composed by name),
``sources`` (journals and ledgers read from files or Redis), ``record`` (a
run's start and seal in Redis), ``render`` (console, JSON, headline, exit
status), ``__main__`` (``python -m bench.verdict``). It imports only web's
contract modules (common.schema, web.config, common.redis_client), never another wing.
"""
