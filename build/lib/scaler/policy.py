"""The autoscaler's decision: a pure function of what it has seen, no I/O and no clock of its own.

    >>> policy = Policy(minimum=2, maximum=6, target=8)
    >>> state = State(desired=2)
    >>> state, decision = decide(policy, state, Sample(time=0.0, in_flight=40, p95_ms=180.0))
    >>> decision.action, decision.desired
    ('up', 5)
    >>> decision.reason
    '40.0 in flight on 2 instances is 20.0 each, over 9.6 (target 8 +20%): 5 instances'

The load is the proxy's in-flight requests, averaged over the last ``window``
seconds of samples. Rules, in order:

- **Up** when each instance carries more than ``target * (1 + tolerance)``: to
  ``ceil(max(load, latest in flight) / target)``, unless the last change is
  younger than ``cooldown``. The window's mean decides *whether* (one noisy sample
  does not); the latest sample may decide *how many*, because early in a spike
  the window still remembers the calm before it, and sizing on the mean alone
  would meet the spike in several steps, a cool-down apart. With ``p95_ms`` set, a
  proxy p95 above ``p95_ms * (1 + tolerance)`` also asks for one more.
- **Down** only to a count on which each instance would stay under
  ``target * (1 - tolerance)``, and only once the load has allowed it for
  ``down_delay`` seconds and no change happened for as long; it goes to the
  largest count asked for during that stretch, so a dip does not take away
  capacity a moment later needed. A p95 not below ``p95_ms * (1 - tolerance)``
  keeps the count.
- Otherwise **hold**; always within ``[minimum, maximum]``.

Between the up and the down thresholds lies a band (0.8 to 1.2 times the target
by default) where nothing changes: a steady load, noise included, settles on one
count instead of flapping around it. Request rate and host CPU ride along in
every decision for the log; they are not triggers: the rate says nothing about
capacity that in-flight does not, and on a shared host no CPU threshold told the
scale-ups that helped from those that did not (BENCHMARKS.md, Autoscaling).
"""
import math
from dataclasses import asdict, dataclass, field, replace
from statistics import fmean

UP, DOWN, HOLD = "up", "down", "hold"


@dataclass(frozen=True)
class Policy:
    minimum: int
    maximum: int
    target: float = 8.0  # in-flight requests per instance
    tolerance: float = 0.2
    cooldown: float = 5.0
    down_delay: float = 15.0
    window: float = 3.0
    p95_ms: float = 0.0  # 0: latency does not count

    @classmethod
    def from_config(cls, config):
        return cls(**{name: getattr(config, name) for name in cls.__dataclass_fields__})

    def clamp(self, count):
        return max(self.minimum, min(self.maximum, count))


@dataclass(frozen=True)
class Sample:
    time: float  # seconds on any steady clock
    in_flight: int
    rate_rps: float = 0.0
    p95_ms: float = None
    cpu_percent: float = None


@dataclass(frozen=True)
class State:
    desired: int
    changed_at: float = -math.inf
    recent: tuple = ()  # the samples inside the window
    low_since: float = None  # start of the current stretch in which fewer instances would do
    low_peak: int = 0  # the most instances asked for during that stretch


@dataclass(frozen=True)
class Decision:
    action: str
    desired: int
    previous: int
    kind: str  # what led to it, stable across ticks (for logs that show each new kind once)
    reason: str
    load: float
    per_instance: float
    sample: Sample = field(repr=False)

    def to_dict(self):
        return {**asdict(self.sample), **{k: v for k, v in asdict(self).items() if k != "sample"}}


def decide(policy, state, sample):
    """The next state and the decision for one new sample."""
    recent = tuple(s for s in state.recent if s.time > sample.time - policy.window) + (sample,)
    load = fmean(s.in_flight for s in recent)
    state = replace(state, recent=recent)
    per = load / state.desired
    high, low = policy.target * (1 + policy.tolerance), policy.target * (1 - policy.tolerance)
    said = f"{load:.1f} in flight on {instances(state.desired)} is {per:.1f} each"

    def decision(action, desired, kind, reason):
        return Decision(action, desired, state.desired, kind, reason, round(load, 3), round(per, 3), sample)

    wanted, why = up_wanted(policy, state, sample, load, per, high)
    if wanted > state.desired:
        since = sample.time - state.changed_at
        if since < policy.cooldown:
            return replace(state, low_since=None, low_peak=0), decision(
                HOLD, state.desired, "cooldown",
                f"{why}: {wanted} wanted, cooling down {policy.cooldown - since:.1f}s more")
        return State(wanted, sample.time, recent), decision(UP, wanted, "up", f"{why}: {instances(wanted)}")
    if why:
        return replace(state, low_since=None, low_peak=0), decision(
            HOLD, state.desired, "at-max", f"{why}, already at AUTOSCALE_MAX={policy.maximum}")

    fits = policy.clamp(math.ceil(load / low))
    if policy.p95_ms and sample.p95_ms is not None and sample.p95_ms > policy.p95_ms * (1 - policy.tolerance):
        fits = max(fits, state.desired)  # latency not comfortably low yet: keep what there is
    if fits >= state.desired:
        return replace(state, low_since=None, low_peak=0), decision(
            HOLD, state.desired, "steady", f"{said}, within {low:.1f}..{high:.1f}")
    low_since = sample.time if state.low_since is None else state.low_since
    peak = max(state.low_peak, fits)
    waited = sample.time - max(low_since, state.changed_at)
    if waited < policy.down_delay:
        return replace(state, low_since=low_since, low_peak=peak), decision(
            HOLD, state.desired, "waiting",
            f"{said}: {peak} would do; going down once that holds for {policy.down_delay - waited:.1f}s more")
    return State(peak, sample.time, recent), decision(
        DOWN, peak, "down", f"{said}: {peak} keep each under {low:.1f} (target {policy.target:g}"
                            f" -{policy.tolerance:.0%}), for {waited:.1f}s now")


def instances(count):
    return f"{count} instance" + "s" * (count != 1)


def up_wanted(policy, state, sample, load, per, high):
    """(count wanted above the current one, why), or (current count, "") when nothing asks for more."""
    wanted, reasons = state.desired, []
    if per > high:
        wanted = math.ceil(max(load, sample.in_flight) / policy.target)
        reasons.append(f"{load:.1f} in flight on {instances(state.desired)} is {per:.1f} each, over {high:.1f}"
                       f" (target {policy.target:g} +{policy.tolerance:.0%})")
    if policy.p95_ms and sample.p95_ms is not None and sample.p95_ms > policy.p95_ms * (1 + policy.tolerance):
        wanted = max(wanted, state.desired + 1)
        reasons.append(f"p95 {sample.p95_ms:.0f} ms over {policy.p95_ms * (1 + policy.tolerance):.0f}")
    return policy.clamp(wanted), "; ".join(reasons)
