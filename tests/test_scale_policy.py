"""The autoscaler's pure policy on synthetic metric sequences: no flapping, reaching MAX, returning to MIN."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.policy import DOWN, HOLD, UP, Policy, Sample, State, decide

pytestmark = pytest.mark.fast

POLICY = Policy(minimum=2, maximum=8, target=8, tolerance=0.2, cooldown=5, down_delay=15, window=3)
TICK = 0.5


def run(policy, loads, start=2, p95s=None):
    """Feeds one sample per tick; the decisions, in order."""
    state, decisions = State(desired=start), []
    for i, load in enumerate(loads):
        sample = Sample(time=i * TICK, in_flight=load, p95_ms=p95s[i] if p95s else None)
        state, decision = decide(policy, state, sample)
        decisions.append(decision)
    return decisions


def changes(decisions):
    return [d for d in decisions if d.action != HOLD]


def seconds(n):
    return int(n / TICK)


def test_a_steady_noisy_load_settles_on_one_count_and_stays_there():
    noise = random.Random(7)
    loads = [round(30 * noise.uniform(0.75, 1.25)) for _ in range(seconds(600))]  # ±25 % around 30 in flight
    decided = changes(run(POLICY, loads))
    assert len(decided) <= 2, [(d.action, d.desired, d.reason) for d in decided]
    assert decided[0].action == UP and decided[-1].desired in (4, 5)  # 30 / 8 per instance


def test_a_sustained_spike_reaches_max_and_the_calm_after_it_returns_to_min():
    loads = [6] * seconds(20) + [200] * seconds(60) + [6] * seconds(60)
    decisions = run(POLICY, loads)
    desired = [d.desired for d in decisions]
    spike = seconds(20)
    assert desired[spike - 1] == 2, "a light load stays at MIN"
    assert desired[spike] == 8, "in one step, on the first sample: the window's calm past does not size it"
    assert set(desired[spike:spike + seconds(60)]) == {8}
    calm = spike + seconds(60)
    first_down = next(i for i in range(calm, len(decisions)) if decisions[i].action == DOWN)
    assert (first_down - calm) * TICK >= POLICY.down_delay, "down only after the load stayed low for down_delay"
    # While the window still holds spike samples an intermediate count may win the first step down.
    at_min = desired.index(2, calm)
    assert (at_min - calm) * TICK <= 2 * POLICY.down_delay + POLICY.window
    assert set(desired[at_min:]) == {2}
    assert len(changes(decisions)) <= 4


def test_a_short_dip_during_a_peak_takes_nothing_away():
    loads = [100] * seconds(20) + [5] * seconds(10) + [100] * seconds(20)
    decisions = run(POLICY, loads)
    assert [d.action for d in changes(decisions)] == [UP]
    assert any(d.kind == "waiting" for d in decisions), "the dip was noticed, and waited out"


def test_one_high_sample_in_a_calm_window_changes_nothing():
    loads = [10] * seconds(10) + [60] + [10] * seconds(10)
    assert not changes(run(POLICY, loads))


def test_up_waits_for_the_cooldown_after_a_change():
    loads = [30] * seconds(2) + [70] * seconds(10)  # 30 -> 4 instances, then 70 -> 9, capped at 8
    decisions = run(POLICY, loads)
    ups = changes(decisions)
    assert [d.desired for d in ups] == [4, 8]
    first, second = (decisions.index(d) * TICK for d in ups)
    assert second - first >= POLICY.cooldown
    assert any(d.kind == "cooldown" for d in decisions)


def test_going_down_lands_on_the_most_asked_for_during_the_low_stretch():
    loads = [60] * seconds(4) + [20] * seconds(5) + [40] * seconds(14)  # 8 instances; fewer would do; 20 and 40
    decisions = run(POLICY, loads)
    downs = [d for d in decisions if d.action == DOWN]
    assert [d.desired for d in downs] == [7]  # ceil(40 / 6.4): the 40 stretch, not the 20 one


def test_p95_asks_for_one_more_at_a_time_and_only_when_set():
    loads = [10] * seconds(30)
    slow = [900.0] * seconds(30)
    assert not changes(run(POLICY, loads, p95s=slow)), "p95 is no trigger unless AUTOSCALE_P95_MS is set"
    latency = Policy(minimum=2, maximum=8, target=8, cooldown=5, p95_ms=200)
    desired = [d.desired for d in changes(run(latency, loads, p95s=slow))]
    assert desired == [3, 4, 5, 6, 7, 8][:len(desired)] and len(desired) >= 4


def test_every_decision_says_why_with_its_inputs():
    [decision] = run(POLICY, [80])
    assert decision.action == UP and "80.0 in flight on 2 instances is 40.0 each, over 9.6" in decision.reason
    row = decision.to_dict()
    assert {row[k] for k in ("action", "desired", "previous")} >= {UP, 8, 2} and row["in_flight"] == 80


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.05, 3.0), st.integers(0, 300)), min_size=1, max_size=300),
       st.integers(1, 4), st.integers(0, 6))
def test_any_sequence_stays_in_bounds_and_respects_cooldown_and_down_delay(steps, minimum, extra):
    policy = Policy(minimum=minimum, maximum=minimum + extra, target=8, cooldown=5, down_delay=15)
    state, now, last_change = State(desired=minimum), 0.0, None
    for gap, load in steps:
        now += gap
        state, decision = decide(policy, state, Sample(time=now, in_flight=load))
        assert policy.minimum <= decision.desired <= policy.maximum
        if decision.action == UP and last_change is not None:
            assert now - last_change >= policy.cooldown
        if decision.action == DOWN and last_change is not None:
            assert now - last_change >= policy.down_delay
        if decision.action != HOLD:
            last_change = now
