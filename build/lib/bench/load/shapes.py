"""Locust load shapes, chosen by name with ``--shape``; without it, Locust's steady -u users.

    $ scripts/check --shape spike --users 10 --duration 120            # 10 -> 200 -> 10 users
    $ locust -f bench/locustfile.py --headless -u 10 -t 120s --shape spike --spike-users 200 ...

``spike``: ``-u`` users for the first quarter of ``-t``, ``--spike-users`` for the
next 40 %, then ``-u`` again until the end; each change is spawned (or stopped)
within ``CHANGE_S`` seconds. The report's timeline shows instances following it.

A shape is a ``LoadTestShape``, but Locust's own shape loop does not run it:
when that loop ends (and when anything else stops a shape run) Locust quits at
once, before the consistency plugin has read a single journal, and the verdict is
never written. So the run starts as a plain one with ``-u`` users, a greenlet of
ours moves the user count wherever the shape's ``tick()`` says, once a second as
Locust's loop would, and the plugin's ``-t`` timer ends the run as it ends any
other (bench/load/plugin.py).
"""
import gevent
from locust import LoadTestShape
from locust.runners import WorkerRunner

CHANGE_S = 2.0
SPIKE_FROM, SPIKE_UNTIL = 0.25, 0.65  # fractions of the run time


class SpikeShape(LoadTestShape):
    def __init__(self, base, peak, duration):
        super().__init__()
        self.base, self.peak, self.duration = base, peak, duration
        self.rate = max(abs(peak - base) / CHANGE_S, 1.0)

    def window(self):
        """(start, end) of the spike, in seconds since the run started."""
        return SPIKE_FROM * self.duration, SPIKE_UNTIL * self.duration

    def tick(self):
        start, end = self.window()
        return (self.peak if start <= self.get_run_time() < end else self.base), self.rate


SHAPES = {"spike": SpikeShape}


def add_arguments(parser):
    # Not in the web UI's form: the shape is chosen at start-up, before any form is sent.
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None, include_in_web_ui=False,
                        help="a load shape instead of steady -u users (needs -t)")
    parser.add_argument("--spike-users", type=int, default=200, include_in_web_ui=False,
                        help="users at the top of the spike shape")


def follow(shape, runner):
    """Give the runner the shape's user count whenever it changes; until killed.

    The run itself starts the first count (``-u``): a ``start()`` now would kill the
    spawning greenlet that is still firing ``test_start``, halfway through its listeners.
    """
    shape.reset_time()
    current = shape.tick()
    while True:
        gevent.sleep(1)
        wanted = shape.tick()
        if wanted != current:
            runner.start(*wanted)
            current = wanted


def install(environment, duration):
    """Follow the chosen shape during each test, spread over ``duration`` seconds (the run time)."""
    options = environment.parsed_options
    if not (options and options.shape) or isinstance(environment.runner, WorkerRunner):
        return  # workers get their users from the master, which follows the shape
    duration = duration or options.run_time
    if not duration:
        raise ValueError(f"--shape {options.shape} spreads itself over the run time: give -t")
    shape = SHAPES[options.shape](base=options.num_users or 1, peak=options.spike_users, duration=duration)
    shape.runner = environment.runner
    followers = []

    def on_test_start(**_):
        followers.append(gevent.spawn(follow, shape, environment.runner))

    def on_test_stop(**_):
        while followers:
            followers.pop().kill(block=False)

    environment.events.test_start.add_listener(on_test_start)
    environment.events.test_stop.add_listener(on_test_stop)
