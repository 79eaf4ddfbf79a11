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
(``recovery`` after kill, term and reload; ``thaw`` after a freeze; ``heal``
after a lasting network fault, whose own event carries ``duration_s``).
NETWORK_ACTIONS act on the links between ``--hosts`` hosts
(bench/chaos/network.py), from the machine's own namespace, not on processes.
The report, the Locust tab and the harness count actions by these names, and
the console's "kills" are ``KILLS`` only.
"""
import difflib

from web.clock import clock

PROCESS_ACTIONS = ("kill", "term", "reload", "rolling", "freeze", "scale")
NETWORK_ACTIONS = ("partition", "oneway", "latency", "loss", "reset")
ACTIONS = PROCESS_ACTIONS + NETWORK_ACTIONS
FOLLOW_UPS = ("recovery", "thaw", "heal")
KILLS = ("kill",)  # a crash: SIGKILL; ``term`` is a graceful stop, counted apart
DEFAULT_MIX = "kill,term,reload,freeze"
# How a report names an action in words: (one, many).
IN_WORDS = {"kill": ("SIGKILL to a worker", "SIGKILLs to workers"),
            "term": ("SIGTERM to a worker", "SIGTERMs to workers"),
            "reload": ("reload (SIGHUP)", "reloads (SIGHUP)"),
            "rolling": ("rolling reload", "rolling reloads"),
            "freeze": ("freeze (SIGSTOP, then SIGCONT)", "freezes (SIGSTOP, then SIGCONT)"),
            "scale": ("worker added or removed (TTIN/TTOU)", "workers added or removed (TTIN/TTOU)")}
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


def is_action(event):
    """True for an action's own event, False for a follow-up."""
    return event.get("action") not in FOLLOW_UPS


def format_event(event):
    """One event as the chaos process prints it."""
    pid = f"pid {event['pid']}" if event["pid"] else "-"
    extras = " ".join(f"{k}={v}" for k, v in event.items() if k not in EVENT_FIELDS)
    return f"{clock(event['time'])} {event['action']:<8} {event['target'] or '-'} {pid} {event['outcome']} {extras}".rstrip()
