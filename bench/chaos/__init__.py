"""The chaos wing: a seeded monkey that breaks the formation's processes while load runs.

    from bench.chaos import ChaosMonkey, parse_mix
    monkey = ChaosMonkey(client, rate=1.0, mix=parse_mix("kill=3,term"), seed=7, log_path="chaos.jsonl")

Modules: ``vocabulary`` (actions, follow-ups, the mix syntax: the contract
everyone who names an action imports), ``targets`` (what may be signalled),
``engine`` (the schedule, handing each action to its family), ``apart`` (the
schedule in a process of its own), ``processes`` (the web processes' faults),
``recovery`` (how a recovery is timed), ``backing`` (the backing service's
faults), ``replicas`` (the replicated primary's), ``network`` (faults between
``--hosts`` hosts), ``__main__`` (the Procfile's ``chaos`` type). It imports
web, scaler and backing, never another bench wing.
"""
from bench.chaos.engine import ChaosMonkey
from bench.chaos.vocabulary import ACTIONS, DEFAULT_MIX, FOLLOW_UPS, KILLS, parse_mix

__all__ = ["ACTIONS", "DEFAULT_MIX", "FOLLOW_UPS", "KILLS", "ChaosMonkey", "parse_mix"]
