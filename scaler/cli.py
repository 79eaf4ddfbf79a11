"""scripts/scale: change the number of web instances of a running formation, or show it.

    $ scripts/scale web=6
    web=6: asked (4 now, 4 not the scaler's to stop)
    web: 5 registered, 1 starting
    web=6: 6 registered in 2.3s
    $ scripts/scale                 # the formation as the scaler sees it
    $ scripts/scale web=2           # below honcho's own 4: refused, exit 2

It writes the count the scaler keeps (``factor6:desired:web``) and waits until
the registry shows it and nothing is starting or draining any more. Exit
status: 0 done, 1 not done within ``--timeout``, 2 refused: no scaler is
running, an autoscaler is (it owns the count), or the count is outside what the
scaler can reach.
"""
import argparse
import os
import sys
import time

from redis.exceptions import RedisError

from scaler.shared import Desired, read_status
from scaler.supervisor import PROCESS_TYPE
from common.settings import redis_url
from common.redis_client import connect
from common.schema import AUTOSCALE_KEY, SCALER_KEY
from common.registry import Registry

POLL_S = 0.2


class Refused(Exception):
    """The count cannot be asked for: the message says why."""


def count_argument(text):
    kind, sep, count = text.partition("=")
    if not sep or kind != PROCESS_TYPE or not count.isdigit():
        raise argparse.ArgumentTypeError(f"expected {PROCESS_TYPE}=N, such as {PROCESS_TYPE}=6, not {text!r}"
                                         f" (only {PROCESS_TYPE} instances can be added live)")
    return int(count)


def parse_args(argv, env):
    parser = argparse.ArgumentParser(prog="scripts/scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("count", nargs="?", type=count_argument, metavar=f"{PROCESS_TYPE}=N",
                        help="the number of web instances to have; without it, show the formation")
    parser.add_argument("--redis-url", default=redis_url(env), help="the formation's Redis (default from env)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the count (default 60)")
    return parser.parse_args(argv)


def scaler_status(client):
    status = read_status(client, SCALER_KEY)
    if not status:
        raise Refused("no scaler is running on this formation's Redis: start the formation with its scaler"
                      " (plain `honcho start` runs every Procfile type; scripts/check starts one too)")
    return status


def check_reachable(count, status):
    foreign = status["foreign"] or 0
    if count < foreign:
        raise Refused(f"{PROCESS_TYPE}={count} is below the {foreign} instances the scaler did not start"
                      f" (honcho's, or another host's): it only ever stops its own, so {foreign} is the least")
    if count > max(foreign, status["max"]):
        raise Refused(f"{PROCESS_TYPE}={count} is above SCALER_MAX={status['max']}, the most the scaler will run")


def describe(status, registered):
    states = [i["state"] for i in status["instances"]]
    busy = ", ".join(f"{states.count(s)} {s}" for s in ("starting", "waiting", "draining") if s in states)
    return f"{PROCESS_TYPE}: {registered} registered" + (f", {busy}" if busy else "")


def done(status, count, registered):
    return status["requested"] == count and status["steady"] and registered == count


def ask(client, count):
    """Write the count for the scaler (the dashboard's button does too); Refused, with the reason, when it
    cannot be had. Returns the scaler's status as it was read."""
    status = scaler_status(client)
    check_reachable(count, status)
    if read_status(client, AUTOSCALE_KEY):
        raise Refused("an autoscaler is running and sets the count itself; stop it, or change its bounds"
                      " (AUTOSCALE_MIN, AUTOSCALE_MAX)")
    Desired(client).set(count)
    return status


def wait_for(client, count, timeout, say):
    registry, began = Registry(client), time.monotonic()
    shown = None
    while time.monotonic() - began < timeout:
        status, registered = scaler_status(client), len(registry.instances())
        if done(status, count, registered):
            say(f"{PROCESS_TYPE}={count}: {registered} registered in {time.monotonic() - began:.1f}s")
            return 0
        line = describe(status, registered)
        if line != shown:
            say(line)
            shown = line
        time.sleep(POLL_S)
    now = describe(scaler_status(client), len(registry.instances()))
    say(f"{PROCESS_TYPE}={count}: not there after {timeout:g}s ({now}); the scaler keeps trying:"
        " see its output (scaler.1 under honcho)")
    return 1


def show(client, say):
    status = scaler_status(client)
    say(f"desired: {status['requested'] if status['requested'] is not None else 'not set'};"
        f" registered: {len(Registry(client).instances())}; not the scaler's: {status['foreign']}")
    for instance in status["instances"]:
        say(f"  {instance['name']:<8} {instance['state']:<9} pid {instance['pid']}  {instance['address'] or '-'}"
            f"  restarts {instance['restarts']}")
    if status["note"]:
        say(f"note: {status['note']}")
    return 0


def main(argv=None, env=os.environ, say=print):
    args = parse_args(argv, env)
    client = connect(args.redis_url)
    try:
        if args.count is None:
            return show(client, say)
        status = ask(client, args.count)
        say(f"{PROCESS_TYPE}={args.count}: asked ({len(Registry(client).instances())} now,"
            f" {status['foreign']} not the scaler's to stop)")
        return wait_for(client, args.count, args.timeout, say)
    except Refused as exc:
        say(f"scripts/scale: {exc}")
        return 2
    except RedisError as exc:
        say(f"scripts/scale: cannot reach the formation's Redis at {args.redis_url}: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main(say=lambda text: print(text, flush=True)))
