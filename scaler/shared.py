"""What the scaler, ``scripts/scale`` and the autoscaler share in Redis.

    >>> Desired(client).set(6)                 # scripts/scale and the autoscaler write it ...
    >>> Desired(client).get()                  # ... the scaler keeps the formation there
    6
    >>> from common.schema import SCALER_KEY
    >>> lease = Lease(client, SCALER_KEY, ttl=3)
    >>> lease.hold({"pid": 4242, "foreign": 2}, reset=[DESIRED_KEY])  # a first take also resets the count
    True
    >>> lease.hold({"pid": 4242, "foreign": 2})   # renewed; False while another live holder has it
    True
    >>> read_status(client, SCALER_KEY)["foreign"]
    2

A lease is a key with a TTL whose value is its holder's status, renewed while
the holder lives: one scaler acts at a time (a second one stands by), and
``scripts/scale`` can tell that no scaler is running. A scaler clears the
desired count as it first takes the lease, so that a formation started again
begins at its Procfile count rather than at a count its Redis kept from the
last run.
"""
import json
import uuid

from common.schema import desired

DESIRED_KEY = desired("web")

# SET only when the key is free or already ours: a check-and-set in one step, so two holders can never both win.
# The keys after the first are deleted in the same step, so nobody can write them between the take and the reset.
HOLD = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['token'] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
return 1
"""
RELEASE = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['token'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Desired:
    """The web instance count the formation should have; None when nobody has asked for one."""

    def __init__(self, client):
        self.client = client

    def get(self):
        value = self.client.get(DESIRED_KEY)
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    def set(self, count):
        self.client.set(DESIRED_KEY, int(count))

    def restore(self, count):
        """Write ``count`` back unless somebody has set one meanwhile (a Redis restarted empty lost it)."""
        self.client.set(DESIRED_KEY, int(count), nx=True)


class Lease:
    def __init__(self, client, key, ttl):
        self.client, self.key, self.ttl = client, key, ttl
        self.token = uuid.uuid4().hex
        self._hold, self._release = client.register_script(HOLD), client.register_script(RELEASE)

    def hold(self, status, reset=()):
        """Take or renew the lease with ``status`` as its value; False while another holder's is alive.

        The keys in ``reset`` are deleted if, and as, it is taken or renewed."""
        value = json.dumps({**status, "token": self.token})
        return bool(self._hold(keys=[self.key, *reset], args=[self.token, value, int(self.ttl * 1000)]))

    def release(self):
        self._release(keys=[self.key], args=[self.token])


def read_status(client, key):
    """The live holder's status, or None when no holder has renewed it within its TTL."""
    try:
        return json.loads(client.get(key) or "null")
    except ValueError:
        return None
