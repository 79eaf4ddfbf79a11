"""The Procfile's chaos process type and ``python -m bench.chaos``: the engine on a schedule, or one action.

    $ python -m bench.chaos --rate 1 --mix kill=3,term=1,reload=1,freeze=1,scale=1 --seed 7 --duration 60 --log chaos.jsonl
    chaos: 1 action/s at fixed intervals, mix kill=3,term=1,reload=1,freeze=1,scale=1, seed 7
    12:00:01.002 kill     web.2 pid 4251 ok signal=SIGKILL
    12:00:01.391 recovery web.2 pid 4251 ok after=kill recovery_s=0.389 replacement=[4263] served_by=4263
    $ python -m bench.chaos once freeze --target web.1     # one action, then wait for its follow-up
    $ CHAOS_RATE=1 CHAOS_SEED=7 honcho start -c web=4      # the Procfile's chaos type, idle without CHAOS_RATE
    $ python -m bench.chaos --layout reports/x/hosts.json --rate 0.2 --mix partition,loss --fault-s 5   # as root
    $ python -m bench.chaos --layout reports/x/hosts.json once partition --target web2   # heals after --fault-s
    $ python -m bench.chaos --rate 1 --events json --lifeline   # a schedule apart (bench/chaos/apart.py)

With ``--layout`` (the hosts.json of a ``scripts/check --hosts`` run) it is
the network agent: it runs in the machine's own namespace and makes the
network actions (bench/chaos/network.py) between that run's hosts.

With ``--events json`` each event is printed as its JSON line; with
``--lifeline`` the process stops, as on SIGTERM, once its stdin closes: the
engine that started it is gone, however it ended.

Bad settings (``--rate -1``, ``CHAOS_MIX=kil``) end it at once with the reason in
one line and exit status 2, so a formation is never started with chaos it cannot do.
SIGTERM and SIGINT only set an event; the main thread then stops the engine,
which thaws every frozen worker first.
"""
import argparse
import json
import os
import random
import signal
import sys
import threading

from bench.arguments import OneLineParser, chaos_mix, number
from bench.chaos.engine import ChaosMonkey
from bench.chaos.network import DEFAULT_PARTITIONS, NetworkFaults, partition_pairs
from bench.chaos.recovery import POLL_S
from bench.chaos.vocabulary import ACTIONS, DEFAULT_MIX, DRY_RUN, format_event
from common.settings import redis_url
from common.redis_client import connect


def pairs_argument(text):
    try:
        return partition_pairs(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv, env):
    parser = OneLineParser(
        prog="python -m bench.chaos",
        description="Kill, freeze, reload and rescale the formation's web processes, and break its Redis server.",
        epilog="CHAOS_RATE, CHAOS_MIX and CHAOS_SEED give the defaults; with a rate of 0 the monkey "
               "only idles until SIGTERM (the Procfile's chaos type relies on that).")
    parser.add_argument("--rate", type=number(float, least=0, hint=" (0: off)"), default=env.get("CHAOS_RATE") or "0",
                        help="actions per second, at fixed intervals (default: CHAOS_RATE, else 0 = off)")
    parser.add_argument("--mix", type=chaos_mix, default=env.get("CHAOS_MIX") or DEFAULT_MIX,
                        help=f"action weights, 'kill=3,term=1' or 'kill,term' (default: CHAOS_MIX, else {DEFAULT_MIX})")
    parser.add_argument("--seed", type=int, default=env.get("CHAOS_SEED") or None,
                        help="random seed, for a reproducible run (default: CHAOS_SEED, else random)")
    parser.add_argument("--duration", type=number(float, above=0),
                        help="seconds to run (default: until SIGTERM or Ctrl-C)")
    parser.add_argument("--log", metavar="PATH", help="append every event to PATH as a JSON line")
    parser.add_argument("--freeze-s", type=number(float, above=0), default=3.0,
                        help="how long a freeze, of a worker or of Redis, lasts (default: 3)")
    parser.add_argument("--outage-s", type=number(float, above=0), default=3.0,
                        help="how long a redis-outage lasts (default: 3)")
    proxy = f"http://127.0.0.1:{env['PROXY_PORT']}" if env.get("PROXY_PORT") else None
    parser.add_argument("--proxy-url", default=proxy,
                        help="where a recovery is timed to the first hit served (default: PROXY_PORT's, if set)")
    parser.add_argument("--max-workers", type=number(int, least=1), default=4,
                        help="scale never goes above this per instance")
    parser.add_argument("--dry-run", action="store_true", help="choose actions and targets, send no signal")
    parser.add_argument("--events", choices=("text", "json"), default="text",
                        help="print each event as a line of text (default) or as its JSON line")
    parser.add_argument("--lifeline", action="store_true", help="stop once stdin closes")
    parser.add_argument("--since", type=float, metavar="EPOCH",
                        help="the wall-clock time the schedule began, for a schedule apart to keep its engine's beat")
    parser.add_argument("--redis-url", default=redis_url(env), help="the formation's Redis (default from env)")
    parser.add_argument("--layout", metavar="HOSTS_JSON", help="a --hosts run's hosts.json: make network faults there")
    parser.add_argument("--fault-s", type=number(float, above=0), default=5.0, help="how long a network fault lasts (default: 5)")
    parser.add_argument("--partitions", type=pairs_argument, default=DEFAULT_PARTITIONS,
                        help=f"host pairs a partition cuts (default: {DEFAULT_PARTITIONS})")
    commands = parser.add_subparsers(dest="command", metavar="once", help="one action instead of a schedule")
    once = commands.add_parser("once", help="perform one action, wait for its follow-up, and exit")
    once.add_argument("action", choices=ACTIONS)
    once.add_argument("--target", metavar="NAME", help="the instance, e.g. web.2, or the web host, e.g. web2"
                      " (default: a random one)")
    args = parser.parse_args(argv)
    if isinstance(args.partitions, str):  # argparse does not type-convert a default
        args.partitions = partition_pairs(args.partitions)
    return args


SHOWN = {"text": format_event, "json": json.dumps}


def say(text):
    print(text, flush=True)  # flushed at once: under honcho stdout is a pipe


def main(argv=None, env=os.environ):
    args = parse_args(argv, env)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    if args.lifeline:
        threading.Thread(target=lambda: (sys.stdin.buffer.read(), done.set()), daemon=True).start()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    network = NetworkFaults.from_layout(args.layout, seed, fault_s=args.fault_s, partitions=args.partitions,
                                        dry_run=args.dry_run) if args.layout else None
    try:
        monkey = ChaosMonkey(connect(args.redis_url), rate=args.rate, mix=args.mix, seed=seed, log_path=args.log,
                             freeze_s=args.freeze_s, max_workers=args.max_workers, dry_run=args.dry_run,
                             on_event=lambda event: say(SHOWN[args.events](event)), network=network,
                             proxy_url=args.proxy_url, outage_s=args.outage_s)
    except ValueError as exc:
        say(f"chaos: refused: {exc}")
        return 2
    mix = ",".join(f"{name}={weight:g}" for name, weight in monkey.mix.items())
    if args.command == "once":
        event = monkey.act(args.action, args.target)
        while monkey.busy() and not done.wait(POLL_S):
            pass
        monkey.stop()
        return 0 if event["outcome"] in ("ok", DRY_RUN) else 1
    if args.rate > 0:
        say(f"chaos: {args.rate:g} action/s at fixed intervals, mix {mix}, seed {monkey.seed}")
        monkey.start(since=args.since)
    else:
        say("chaos: off; set CHAOS_RATE (actions per second, e.g. CHAOS_RATE=1) to unleash the monkey")
    done.wait(args.duration)
    monkey.stop()
    if args.rate > 0:
        say("chaos: summary " + json.dumps(monkey.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
