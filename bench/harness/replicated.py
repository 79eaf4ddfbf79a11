"""``scripts/check --redis sentinel``: the backing service as one primary, two replicas and three Sentinels.

    backing = Replicated(primary_port=6390, base_port=20000, types=["redis", "web", "proxy", "scaler"])
    backing.types, backing.concurrency      # [..., 'replica', 'sentinel'], 'replica=2,sentinel=3'
    backing.env                             # REDIS_PRIMARY, REDIS_SENTINELS, ... for the env file
    backing.wait_ready(abort)               # the Sentinels see both replicas and can reach a quorum
    backing.describe()                      # what replication.json in the run folder says

Every node is a ``python -m backing`` of the Procfile (``replica`` and ``sentinel``
types, one supervisor each), so a killed server is restarted by its supervisor and
rejoins as a replica (backing/replication.py). honcho hands each process type a
block of 100 ports from its base port, in the order the types are named on its
command line, so the Sentinels' ports are known before anything starts, and every
client is given them in the env file: every client then follows the primary.
"""
from scaler.processes import wait_until
from common.settings import sentinels
from common.redis_client import check_sentinels, sentinel_of

REPLICAS, SENTINELS, MASTER = 2, 3, "factor6"
# Sentinel settings for a demonstration: a failover within a few seconds of a primary going silent.
SETTINGS = {"REDIS_QUORUM": 2, "REDIS_DOWN_AFTER_MS": 1000, "REDIS_FAILOVER_MS": 4000}


class Replicated:
    def __init__(self, primary_port, base_port, types):
        self.types = [*types, "replica", "sentinel"]
        self.concurrency = f"replica={REPLICAS},sentinel={SENTINELS}"
        replica_base = base_port + 100 * self.types.index("replica")
        sentinel_base = base_port + 100 * self.types.index("sentinel")
        self.primary_port = primary_port
        self.replica_ports = [replica_base + i for i in range(REPLICAS)]
        self.sentinel_ports = [sentinel_base + i for i in range(SENTINELS)]
        self.env = {"REDIS_PRIMARY": f"127.0.0.1:{primary_port}",
                    "REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports),
                    "REDIS_MASTER_NAME": MASTER, **SETTINGS}
        self.settings = sentinels(self.env)

    def wait_ready(self, abort=None, timeout=60):
        """Until the Sentinels agree on the primary, see both replicas and can fail over; else TimeoutError."""
        sentinel = sentinel_of(self.settings, timeout=1)

        def ready():
            replicas = sentinel.sentinels[0].sentinel_slaves(MASTER)
            up = [r for r in replicas if r.get("master-link-status") == "ok" and not r.get("is_disconnected")]
            return len(up) == REPLICAS and check_sentinels(self.settings) is None

        try:
            wait_until(ready, timeout=timeout, interval=0.5, abort=abort,
                       what=f"{REPLICAS} replicas seen by {SENTINELS} Sentinels with a quorum")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}: {check_sentinels(self.settings) or 'replicas not in sync'}") from None

    def describe(self):
        return {"primary": self.primary_port, "replicas": self.replica_ports, "sentinels": self.sentinel_ports,
                "master_name": MASTER, "quorum": SETTINGS["REDIS_QUORUM"],
                "down_after_ms": SETTINGS["REDIS_DOWN_AFTER_MS"], "failover_timeout_ms": SETTINGS["REDIS_FAILOVER_MS"]}

