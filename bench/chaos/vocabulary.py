"""The chaos vocabulary: the actions, their follow-ups, and the mix syntax, shared by everyone who speaks it.

    >>> parse_mix("kill=3,term")
    {'kill': 3.0, 'term': 1.0}
    >>> parse_mix("kil")
    Traceback (most recent call last):
    ...
    ValueError: unknown chaos action(s) kil (did you mean kill?); choose from kill, term, reload, rolling, freeze, scale, primary-kill, primary-freeze

The engine performs ACTIONS; FOLLOW_UPS are events that report on an action
rather than act (``recovery`` after kill, term and reload; ``thaw`` after a
freeze). The report, the Locust tab and the harness count actions by these
names, and the console's "kills" are ``KILLS`` only.
"""
import difflib

from web.clock import clock

ACTIONS = ("kill", "term", "reload", "rolling", "freeze", "scale")
REPLICA_ACTIONS = ("primary-kill", "primary-freeze")  # on the replicated backing service: bench/chaos/replicas.py
ACTIONS += REPLICA_ACTIONS
FOLLOW_UPS = ("recovery", "thaw", "failover", "primary-thaw")
KILLS = ("kill",)  # a crash: SIGKILL; ``term`` is a graceful stop, counted apart
DEFAULT_MIX = "kill,term,reload,freeze"
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


def is_action(event):
    """True for an action's own event, False for a follow-up."""
    return event.get("action") not in FOLLOW_UPS


def format_event(event):
    """One event as the chaos process prints it."""
    pid = f"pid {event['pid']}" if event["pid"] else "-"
    extras = " ".join(f"{k}={v}" for k, v in event.items() if k not in EVENT_FIELDS)
    return f"{clock(event['time'])} {event['action']:<8} {event['target'] or '-'} {pid} {event['outcome']} {extras}".rstrip()
