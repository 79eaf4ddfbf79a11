"""The chaos vocabulary: the actions, their follow-ups, and the mix syntax, shared by everyone who speaks it.

    >>> parse_mix("kill=3,term")
    {'kill': 3.0, 'term': 1.0}
    >>> parse_mix("kil")
    Traceback (most recent call last):
    ...
    ValueError: unknown chaos action(s) kil (did you mean kill?); choose from kill, term, reload, ...
    >>> split_mix(parse_mix("kill=3,partition,loss"))
    ({'kill': 3.0}, {'partition': 1.0, 'loss': 1.0})
    >>> network_refusal({"kill": 1.0, "loss": 1.0})
    'chaos action loss acts on the network between hosts: it needs --hosts'

The engine performs ACTIONS, which ``IN_WORDS`` says in words ("3 SIGKILLs
to workers"); FOLLOW_UPS are events that report on an action rather than act
(``recovery`` after kill, term, reload and the backing actions; ``thaw``
after a freeze; ``heal`` after a lasting network fault; ``restore`` after a
Redis outage). BACKING_ACTIONS break the backing service (bench/chaos/backing.py).
NETWORK_ACTIONS act on the links between ``--hosts`` hosts
(bench/chaos/network.py), from the machine's own namespace, not on processes.
The report, the Locust tab and the harness count actions by these names, and
the console's "kills" are ``KILLS`` only.

Lasting faults, the one convention every fault kind follows: an action that
lasts carries ``"duration_s"`` on its own event (the time asked for, or null
when it lasts until ended by hand), and its end is a follow-up event of the
same target with ``"after": "<action>"``: ``thaw`` after ``freeze``, ``heal``
after a network fault, ``restore`` after a Redis outage, ``remove`` after a
bad instance. An action without ``duration_s`` is an instant (a kill). Write
them with ``lasting(seconds)`` and ``end_of(action)``; the dashboard's bands and
the report's timeline read faults only through ``fault_spans``, so a new kind
shows there as soon as its events follow this:

    >>> lasting(3.0), end_of("freeze")
    ({'duration_s': 3.0}, {'after': 'freeze'})

    >>> spans = fault_spans([
    ...     {"time": 10.0, "action": "kill", "target": "web.1", "outcome": "ok"},
    ...     {"time": 11.0, "action": "freeze", "target": "web.2", "outcome": "ok", "duration_s": 3.0},
    ...     {"time": 14.2, "action": "thaw", "target": "web.2", "outcome": "ok", "after": "freeze"},
    ...     {"time": 15.0, "action": "bad", "target": "bad.1", "outcome": "ok", "duration_s": None}], now=20.0)
    >>> [(s["action"], s["start"], s["end"], s["open"]) for s in spans]
    [('kill', 10.0, 10.0, False), ('freeze', 11.0, 14.2, False), ('bad', 15.0, 20.0, True)]

Actions a person takes from the dashboard carry ``"manual": true``;
``FORMATION_CHANGES`` are the ones that change the formation rather than
signal a process (scale the web type to N, add or remove a bad instance): the
engine journals them, it never picks them from a mix.
"""
import difflib

from common.clock import clock

PROCESS_ACTIONS = ("kill", "term", "reload", "rolling", "freeze", "scale")
BACKING_ACTIONS = ("redis-kill", "redis-restart", "redis-freeze", "redis-outage")  # bench/chaos/backing.py
REPLICA_ACTIONS = ("primary-kill", "primary-freeze")  # on the replicated backing service: bench/chaos/replicas.py
NETWORK_ACTIONS = ("partition", "oneway", "latency", "loss", "reset")
ACTIONS = PROCESS_ACTIONS + BACKING_ACTIONS + REPLICA_ACTIONS + NETWORK_ACTIONS
FOLLOW_UPS = ("recovery", "thaw", "heal", "restore", "remove", "failover", "primary-thaw")  # and any event with "after" (is_action)
DRY_RUN = "skipped: dry run"  # the outcome of an action chosen but not sent (--dry-run)
SCALE_WEB, BAD_INSTANCE, REMOVE = "scale_web", "bad", "remove"  # a bad instance ends with its ``remove``
FORMATION_CHANGES = (SCALE_WEB, BAD_INSTANCE)  # journaled from the dashboard; never in a mix
RECOVERED = ("kill", "term", "reload")  # actions followed by a ``recovery`` once the instance serves again
KILLS = ("kill",)  # a crash: SIGKILL; ``term`` is a graceful stop, counted apart
DEFAULT_MIX = "kill,term,reload,freeze"
# How a report names an action in words: (one, many).
IN_WORDS = {"kill": ("SIGKILL to a worker", "SIGKILLs to workers"),
            "term": ("SIGTERM to a worker", "SIGTERMs to workers"),
            "reload": ("reload (SIGHUP)", "reloads (SIGHUP)"),
            "rolling": ("rolling reload", "rolling reloads"),
            "freeze": ("freeze (SIGSTOP, then SIGCONT)", "freezes (SIGSTOP, then SIGCONT)"),
            "scale": ("worker added or removed (TTIN/TTOU)", "workers added or removed (TTIN/TTOU)"),
            "redis-kill": ("SIGKILL to the Redis server", "SIGKILLs to the Redis server"),
            "redis-restart": ("clean Redis restart (SIGTERM)", "clean Redis restarts (SIGTERM)"),
            "redis-freeze": ("Redis freeze (SIGSTOP, then SIGCONT)", "Redis freezes (SIGSTOP, then SIGCONT)"),
            "redis-outage": ("Redis outage (stopped, held down)", "Redis outages (stopped, held down)")}
EVENT_FIELDS = ("time", "action", "target", "pid", "outcome")


def parse_mix(text):
    """``"kill=3,term=1"`` or ``"kill,term"`` (equal weights) -> ``{"kill": 3.0, "term": 1.0}``."""
    mix = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, has_weight, weight = item.partition("=")
        try:
            mix[name.strip()] = float(weight) if has_weight else 1.0
        except ValueError:
            raise ValueError(f"the weight in {item!r} is not a number") from None
    return checked_mix(mix)


def checked_mix(mix):
    unknown = sorted(set(mix) - set(ACTIONS))
    if unknown:
        guesses = [f"{name} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(name, ACTIONS, 1))
                   else name for name in unknown]
        raise ValueError(f"unknown chaos action(s) {', '.join(guesses)}; choose from {', '.join(ACTIONS)}")
    if any(weight < 0 for weight in mix.values()) or not any(mix.values()):
        raise ValueError("mix weights must be >= 0, and at least one > 0")
    return dict(mix)


def split_mix(mix):
    """(the process actions' part, the network actions' part) of a mix; either may be empty."""
    return ({name: weight for name, weight in mix.items() if name in PROCESS_ACTIONS},
            {name: weight for name, weight in mix.items() if name in NETWORK_ACTIONS})


def network_refusal(mix):
    """The one-line reason a mix cannot run without --hosts, or None when it can."""
    network = [name for name, weight in split_mix(mix)[1].items() if weight > 0]
    if not network:
        return None
    many = len(network) > 1
    return (f"chaos action{'s' * many} {', '.join(network)} act{'s' * (not many)} on the network between hosts:"
            f" {'they need' if many else 'it needs'} --hosts")


def next_action(mix, rng, backing_rng):
    """The next turn's action: ``rng`` draws a process (or network) action every turn, and ``backing_rng``,
    in the backing actions' share of the turns, puts one of them in its place, so they leave every other
    turn as it was.

    >>> import random
    >>> def turns(mix):
    ...     web, backing = random.Random(1), random.Random(2)
    ...     return [next_action(parse_mix(mix), web, backing) for _ in range(8)]
    >>> turns("kill,term")
    ['kill', 'term', 'term', 'kill', 'kill', 'kill', 'term', 'term']
    >>> turns("kill,term,redis-kill")
    ['kill', 'term', 'redis-kill', 'kill', 'kill', 'kill', 'redis-kill', 'term']
    """
    web = {name: weight for name, weight in mix.items() if name not in BACKING_ACTIONS}
    backing = {name: weight for name, weight in mix.items() if name in BACKING_ACTIONS and weight}
    action = rng.choices(list(web), weights=list(web.values()))[0] if any(web.values()) else None
    if backing and (action is None or backing_rng.random() * sum(mix.values()) < sum(backing.values())):
        action = backing_rng.choices(list(backing), weights=list(backing.values()))[0]
    return action


def is_action(event):
    """True for an action's own event, False for a follow-up (a FOLLOW_UPS name, or any event with ``after``)."""
    return event.get("action") not in FOLLOW_UPS and "after" not in event


def lasting(duration_s):
    """The field an action that lasts carries on its own event; None: until ended by hand."""
    return {"duration_s": duration_s}


def end_of(action):
    """The field the follow-up that ends a lasting ``action`` carries."""
    return {"after": action}


def manual_mark(manual):
    """The field a person's action, and each of its follow-ups, carries."""
    return {"manual": True} if manual else {}


def fault_spans(events, now=None):
    """Each applied action as ``{action, target, start, end, open, manual}``: an instant, or, for an action
    carrying ``duration_s``, a span until its follow-up (``after``), else until its planned end or ``now``."""
    spans, ends = [], {}
    for event in events:
        if event.get("outcome") != "ok":
            continue
        if not is_action(event):
            ends.setdefault((event.get("after"), event.get("target")), []).append(event["time"])
            continue
        spans.append({"action": event["action"], "target": event.get("target"), "start": event["time"],
                      "end": event["time"], "open": False, "manual": bool(event.get("manual")),
                      "lasting": "duration_s" in event, "planned": event.get("duration_s")})
    for span in spans:
        if not span.pop("lasting"):
            span.pop("planned")
            continue
        later = [t for t in ends.get((span["action"], span["target"]), []) if t >= span["start"]]
        planned = span.pop("planned")
        if later:
            span["end"] = later[0]
            ends[(span["action"], span["target"])].remove(later[0])
        else:  # still going now; in a finished run's record, as long as it was planned
            span["end"] = now if now is not None else span["start"] + (planned or 0)
            span["open"] = True
    return spans


def format_event(event):
    """One event as the chaos process prints it."""
    pid = f"pid {event['pid']}" if event["pid"] else "-"
    extras = " ".join(f"{k}={v}" for k, v in event.items() if k not in EVENT_FIELDS)
    return f"{clock(event['time'])} {event['action']:<8} {event['target'] or '-'} {pid} {event['outcome']} {extras}".rstrip()
