"""The replicated backing service's roles: what a server starts as, and a Sentinel's configuration.

    >>> from backing.config import BackingConfig
    >>> replica = BackingConfig.from_env({"REDIS_ROLE": "replica", "REDIS_PRIMARY": "127.0.0.1:6390",
    ...                                   "PORT_REDIS": "6391", "REDIS_SENTINELS": "127.0.0.1:26390"})
    >>> start_as(replica, named=None, waited=0.0, first=True)      # the Sentinels not up yet: as configured
    ('replica', ('127.0.0.1', 6390))
    >>> start_as(replica, named=("127.0.0.1", 6392), waited=0.0, first=False)   # after a failover
    ('replica', ('127.0.0.1', 6392))
    >>> start_as(replica, named=("127.0.0.1", 6391), waited=1.0, first=False)   # it was the primary: wait
    ('wait', 'the Sentinels still name this server the primary')
    >>> start_as(replica, named=("127.0.0.1", 6391), waited=20.0, first=False)  # nobody else was elected
    ('primary', ())
    >>> role_args(("127.0.0.1", 6392))
    ['--replicaof', '127.0.0.1', '6392']
    >>> print(sentinel_conf(BackingConfig.from_env({"REDIS_ROLE": "sentinel", "REDIS_PRIMARY": "127.0.0.1:6390",
    ...                                              "PORT_REDIS": "26390", "REDIS_DATA": "/tmp/s"})))
    port 26390
    bind 127.0.0.1
    dir /tmp/s
    logfile ""
    sentinel resolve-hostnames no
    sentinel monitor factor6 127.0.0.1 6390 2
    sentinel down-after-milliseconds factor6 1000
    sentinel failover-timeout factor6 4000
    sentinel parallel-syncs factor6 2
    <BLANKLINE>

Roles (``REDIS_ROLE``): ``primary``, ``replica`` of ``REDIS_PRIMARY``, or ``sentinel`` monitoring
``REDIS_PRIMARY`` under ``REDIS_MASTER_NAME`` (the same valkey-server binary, run with ``--sentinel``).

**Never a second primary.** In a replicated formation (``REDIS_SENTINELS`` set) a data server asks
the Sentinels, before every restart, which primary to follow, and starts as its replica. A killed
primary whose Sentinels still name it (it died less than down-after ago, and the failover has not
happened) waits for them to elect another, up to ``REDIS_REJOIN_WAIT`` seconds; only if none was
elected by then does it start as the primary again, with the data its append-only file kept. Without
that wait the supervisor's restart, faster than down-after, would hide every kill from Sentinel; and a
server that came back as primary after a failover would be a second primary until Sentinel demoted it.

**Replicated settings** (``REPLICATED_ARGS``, on every data server of a replicated formation, as any
may become a replica): a replica whose link to its primary is down or still syncing refuses reads
(``replica-serve-stale-data no``: MASTERDOWN) rather than serve what its old data file holds, in which
every registry entry has long expired; and a full resync starts at once (``repl-diskless-sync-delay 0``)
rather than after 5 s. A client reading a replica by mistake (the proxy's registry reader, which
dials one address) thus gets an error, and keeps what it knew, instead of an empty registry.

A Sentinel rewrites its configuration file as it learns (replicas, epochs, the current primary), so
the file is written only at its first start: a restarted Sentinel resumes from what it knew.
"""


def start_as(config, named, waited, first):
    """('primary', ()), ('replica', (host, port)) or ('wait', why): how a data server starts now.

    ``named``: the primary the Sentinels name, or None when none answers; ``waited``: seconds since
    this server died; ``first``: nothing has run yet (the formation is starting)."""
    me = ("127.0.0.1" if config.bind.split()[0] in ("0.0.0.0", "::") else config.bind.split()[0], config.port)
    configured = ("replica", tuple(config.primary)) if config.role == "replica" else ("primary", ())
    if config.sentinels is None or (first and named is None):
        return configured
    if named is not None and tuple(named) != me:
        return "replica", tuple(named)
    if first:  # the Sentinels name it before it ever ran: a formation starting again
        return "primary", ()
    if waited < config.rejoin_wait:
        return "wait", ("the Sentinels still name this server the primary" if named else "no Sentinel answers")
    return ("primary", ()) if named else configured


REPLICATED_ARGS = ["--replica-serve-stale-data", "no", "--repl-diskless-sync-delay", "0"]


def role_args(follow):
    return ["--replicaof", follow[0], str(follow[1])] if follow else []


def sentinel_conf(config):
    """A Sentinel's configuration file: itself, and the primary it monitors with the demonstration's timings."""
    name = config.sentinels.master if config.sentinels else "factor6"
    host, port = config.primary
    return "".join(f"{line}\n" for line in (
        f"port {config.port}", f"bind {config.bind}", f"dir {config.data_dir}", 'logfile ""',
        "sentinel resolve-hostnames no",
        f"sentinel monitor {name} {host} {port} {config.quorum}",
        f"sentinel down-after-milliseconds {name} {config.down_after_ms}",
        f"sentinel failover-timeout {name} {config.failover_ms}",
        f"sentinel parallel-syncs {name} 2",
    ))
