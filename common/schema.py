"""The contract in Redis: every key name factor6 processes share, and the grammar of idempotency keys.

    >>> key = make_key("r1a2b", "3f9c.7", 12)
    >>> key, run_of(key), ledger_of(key)
    ('r1a2b:3f9c.7:12', 'r1a2b', 'factor6:ledger:r1a2b')
    >>> run_of("proxy-0af3"), ledger_of("proxy-0af3")   # a key outside any run goes in no ledger
    ('', '')
    >>> parse_key("r1a2b:3f9c.7:12")
    ('r1a2b', '3f9c.7', '12')

Web processes write the counter, key records, ledgers and the served count; the
checker and the harness read them; the registry and the scaler's keys are read
by the proxy, ``scripts/ps``, the chaos monkey and ``scripts/scale``. Everyone
imports the names from here, tests included.
"""
import hashlib

COUNTER = "hits"  # the seed's own key name: the number of hits ever applied
SERVED = "factor6:served"  # hash: instance name -> hits it applied
REGISTRY_PREFIX = "factor6:instance:"  # + address: a live web instance's JSON entry, with a TTL
DESIRED_PREFIX = "factor6:desired:"  # + process type: the count the scaler keeps
SCALER_KEY = "factor6:scaler"  # the scaler's lease; its value is the scaler's status
AUTOSCALE_KEY = "factor6:autoscale"  # the autoscaler's lease
SESSION_PREFIX = "factor6:session:"  # + session id: a visitor's server-side session (Flask-Session, SESSION_STORE=redis)
UPLOAD_PREFIX = "factor6:upload:"  # + upload id: an upload's result, JSON; the file itself is never kept
# The formation's identity (common.settings.formation_id): written by the backing supervisor at every start of its
# server, sent by every web answer in FORMATION_HEADER; a reader whose Redis holds another one reads a wrong Redis.
FORMATION_KEY = "factor6:formation"
FORMATION_HEADER = "X-Factor6-Formation"
RUN_SEPARATOR = ":"


def make_key(run, client, sequence):
    """An idempotency key inside a checked run: ``<run>:<client>:<sequence>``."""
    return f"{run}{RUN_SEPARATOR}{client}{RUN_SEPARATOR}{sequence}"


def parse_key(key):
    """``(run, client, sequence)`` of a run's key; raises ValueError for any other key."""
    parts = key.split(RUN_SEPARATOR, 2)
    if len(parts) != 3 or not parts[0]:
        raise ValueError(f"{key!r} is not <run>:<client>:<sequence>")
    return tuple(parts)


def run_of(key):
    """The run a key belongs to, or '' for keys without a run prefix."""
    run, sep, _ = key.partition(RUN_SEPARATOR)
    return run if sep else ""


def key_record(key):
    """The string that remembers which number a key was given."""
    return f"factor6:key:{key}"


def run_ledger(run):
    """The list of a run's applications, appended by the web processes in the order applied."""
    return f"factor6:ledger:{run}"


def ledger_of(key):
    """The ledger of a key's run, or '' for keys without a run prefix."""
    run = run_of(key)
    return run_ledger(run) if run else ""


def run_record(run):
    """The hash of a run: counter_start when it began; counter_end, ledger_length once sealed."""
    return f"factor6:run:{run}"


def upload_id(key):
    """The id of the upload made with Idempotency-Key ``key``: a retry, on any instance, names the same upload.

    >>> upload_id("r1a2b:3f9c.7:12")
    '22393a8a317ca9b555ea2bcfd7fa272e'
    """
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def upload_result(upload):
    return UPLOAD_PREFIX + upload


def registry_entry(address):
    return REGISTRY_PREFIX + address


def desired(process_type):
    return DESIRED_PREFIX + process_type
