"""The plugin's Locust options, and the one check of their values: command line, start form and settings alike.

    add_arguments(parser)                                  # from an init_command_line_parser listener
    >>> problems({"chaos_rate": "-1", "chaos_mix": "kil", "num_users": 0})
    ['--chaos-rate must be at least 0 (0: no chaos), not -1', 'users must be at least 1, not 0', '--chaos-mix unknown chaos action(s) kil (did you mean kill?); choose from kill, term, ...']
    >>> problems({"chaos_rate": "1", "chaos_mix": "kill=2,term", "num_users": "8"})
    []

It imports no Locust, so its checks run in-process. Values may be strings
(the UI's start form sends strings) or parsed ones; only the names given are
checked. ``refuse_bad_starts`` answers the UI's ``/swarm`` with
``{"success": false, "message": ...}`` before Locust starts anything, as Locust
itself does for a bad user count; ``command_line_problems`` is what ``install``
refuses at start-up, with exit status 2.
"""
import argparse
import os

from bench.arguments import HIT_KINDS, chaos_mix, number, share, writable_folder
from bench.verdict.workloads import WORKLOADS
from common.settings import redis_url

# name in parsed_options -> (what the form and the command line call it, its argparse type)
NUMBERS = {
    "chaos_rate": ("--chaos-rate", number(float, least=0, hint=" (0: no chaos)")),
    "chaos_seed": ("--chaos-seed", number(int)),
    "hit_tries": ("--hit-tries", number(int, least=1)),
    "hit_budget": ("--hit-budget", number(float, above=0)),
    "journal_timeout": ("--journal-timeout", number(float, above=0)),
    "min_success": ("--min-success", share),
    "num_users": ("users", number(int, least=1)),
    "spawn_rate": ("spawn rate", number(float, above=0)),
}


def add_arguments(parser):
    from bench.load import shapes  # Locust itself: this module stays importable without it (the fast tests)

    # Locust's own parser, not an argument group: only it knows include_in_web_ui.
    parser.add_argument("--run-id", default="", help="prefix of every key; generated when empty")
    parser.add_argument("--report-dir", default="",
                        help="where the journal and verdict go (default: reports/<time>-ui-<run>, one per run)")
    parser.add_argument("--redis-url", default=redis_url(os.environ), include_in_web_ui=False,
                        help="the formation's Redis, read for the ledger (not for hits)")
    parser.add_argument("--hit-tries", type=int, default=50, help="most tries per hit before its outcome is unknown")
    parser.add_argument("--hit-budget", type=float, default=20.0,
                        help="seconds a hit is retried for, from its first try, before its outcome is unknown")
    parser.add_argument("--hits", choices=HIT_KINDS, default="keyed", include_in_web_ui=False,
                        help="keyed: POST /hits with a key, retried; keyless: without one, once; keyless-retried:"
                             " without one, retried (wrong on purpose); page: the seed's GET /, once")
    parser.add_argument("--chaos-rate", type=float, default=0.0, help="chaos actions per second (0: off)")
    parser.add_argument("--chaos-mix", default="kill,term,reload,freeze", help="actions, optionally weighted")
    parser.add_argument("--chaos-seed", type=int, default=1, help="seed of the chaos schedule")
    parser.add_argument("--journal-timeout", type=float, default=30.0, include_in_web_ui=False,
                        help="seconds the master waits for every worker's journal")
    parser.add_argument("--min-success", type=float, default=0.5, include_in_web_ui=False,
                        help="least share of tries that must succeed, else the run proved nothing (unknown)")
    parser.add_argument("--workload", default="hits", include_in_web_ui=False,
                        help=f"comma-separated workloads, each with its user class and checker: {', '.join(WORKLOADS)}")
    parser.add_argument("--upload-size", default="1M",
                        help="bytes per upload of the upload workload: 1048576, 512K, 10M")
    shapes.add_arguments(parser)


def problem(flag, check, value):
    """``flag`` and why ``check`` (an argparse type) refuses ``value``; None when it accepts it."""
    try:
        check(value)
    except argparse.ArgumentTypeError as exc:
        return f"{flag} {exc}"
    return None


def problems(values):
    """Every reason to refuse these option values, one line each; [] when all is well."""
    found = [problem(*NUMBERS[name], values[name]) for name in NUMBERS if name in values]
    if "chaos_mix" in values:
        found.append(problem("--chaos-mix", chaos_mix, str(values["chaos_mix"])))
    if values.get("report_dir"):
        found.append(problem("--report-dir", writable_folder, values["report_dir"]))
    return [line for line in found if line]


def command_line_problems(options):
    """The problems of a parsed command line: its values, and a run time of zero or less."""
    values = {name: getattr(options, name) for name in (*NUMBERS, "chaos_mix", "report_dir")
              if getattr(options, name, None) is not None}
    found = problems(values)
    if getattr(options, "run_time", None) is not None and options.run_time <= 0:
        found.append(f"-t/--run-time must be more than 0 seconds, not {options.run_time}")
    return found


def refuse_bad_starts(web_ui):
    """Make the UI's start request answer its form's problems instead of starting the run."""
    from flask import jsonify, request

    @web_ui.app.before_request
    def check_start_form():
        if request.path != "/swarm" or request.method != "POST":
            return None
        values = {name: request.form[field] for name, field in (
            ("chaos_rate", "chaos_rate"), ("chaos_mix", "chaos_mix"), ("chaos_seed", "chaos_seed"),
            ("hit_tries", "hit_tries"), ("num_users", "user_count"), ("report_dir", "report_dir"),
        ) if field in request.form}
        found = problems(values)
        if not found:
            return None
        return jsonify({"success": False, "message": "; ".join(found), "host": web_ui.environment.host})


def take_run_time(options):
    """The headless run's duration, taken from Locust (which then sets no timer of its own); else None."""
    if options and options.headless and options.run_time:
        duration, options.run_time = options.run_time, None
        return duration
    return None
