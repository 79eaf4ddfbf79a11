"""wrk for the benchmarks: one run read back as hits/s, p50/p99 and errors; Lua scripts for POST hits.

    result = run("http://127.0.0.1:8000/", connections=32, duration=10)          # the seed's GET /
    result = run("http://127.0.0.1:8000/hits", 32, 10, script=KEYED, args=["r1"])  # each POST its own key r1:...
    result["rps"], result["p50"], result["p99"], result["errors"]                  # p50 and p99 in ms

wrk itself comes from the Debian package (installed with apt-get when missing).
"""
import re
import subprocess
import sys
import tempfile

from bench.packages import Missing, installed


def keyed(separator=":"):
    """POST /hits, each with a fresh Idempotency-Key <run><separator>wrk<thread>:<n>; with ":" it is common.schema's
    grammar of a checked run's key, so it also goes in the run's ledger; with another it is a key as production
    sends it, exactly-once and nothing more."""
    return """
local n, threads = 0, 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
function init(args) run = args[1] end
function request()
  n = n + 1
  return wrk.format("POST", nil, {["Idempotency-Key"] = run .. "%s" .. "wrk" .. id .. ":" .. n}, "")
end
""" % separator


KEYED = keyed()
# POST /hits without a key.
KEYLESS = 'wrk.method = "POST"\n'


def seconds(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk_path():
    try:
        return installed("wrk", "wrk")
    except Missing as exc:
        sys.exit(f"nothing to measure with: {exc}")


def run(url, connections, duration, script=None, args=()):
    """One wrk run against ``url``: {"rps", "p50", "p99", "errors", "requests"}."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script or "")
        lua.flush()
        command = [wrk_path(), f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--latency",
                   *(["-s", lua.name] if script else []), url, *(["--", *args] if args else [])]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50": seconds(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)) * 1000,
        "p99": seconds(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)) * 1000,
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }
