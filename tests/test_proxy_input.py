"""Bad input at the proxy: a clear 4xx, nothing forwarded, nobody else slowed, the proxy still up.

One redis, web and proxy serve the whole module (tight limits so the cases stay small);
each test checks the proxy is alive and the web instance saw none of it.
"""
import socket
import subprocess
import sys
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.procs import Processes, process_env

MAX_BODY, MAX_LINE, MAX_HEADERS, CLIENT_TIMEOUT = 1000, 1024, 20, 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Processes() as procs:
        redis = procs.redis(tmp_path_factory.mktemp("redis"))
        web = procs.web(redis.url)
        # The stranger stands in for Redis or any other local service the proxy must never reach.
        with socket.create_server(("127.0.0.1", 0)) as stranger:
            stranger.settimeout(0.1)
            proxy = procs.proxy(
                log_path=tmp_path_factory.mktemp("proxy") / "proxy.log",
                PROXY_BACKENDS=web.address, PROXY_MAX_BODY=MAX_BODY, PROXY_MAX_HEADER_LINE=MAX_LINE,
                PROXY_MAX_HEADERS=MAX_HEADERS, PROXY_CLIENT_TIMEOUT=CLIENT_TIMEOUT,
            )
            yield proxy, web, stranger


def forwarded(proxy):
    return requests.get(proxy.url + "/_proxy/metrics", timeout=5).json()["backends"][0]["requests"]


@pytest.fixture
def untouched(stack):
    """Checks, after the test, that the backend and the stranger saw nothing and the proxy still serves."""
    proxy, web, stranger = stack
    before = forwarded(proxy)
    yield stack
    assert forwarded(proxy) == before, "a bad request was forwarded"
    with pytest.raises(socket.timeout):
        stranger.accept()
    assert proxy.popen.poll() is None
    assert requests.get(proxy.url + "/hits", timeout=5).json()["hits"] == 0


def exchange(port, data, timeout=5):
    """Send raw bytes; everything the proxy answers until it closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(data)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return answer


def status_of(answer):
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else None


def post(headers, body=b""):
    return b"POST /hits HTTP/1.1\r\nHost: proxy\r\n" + headers + b"\r\n" + body


CASES = {
    "garbage request line": (b"HELLO THERE\r\n\r\n", 400),
    "invalid header name": (b"GET /hits HTTP/1.1\r\nHost: proxy\r\nBad Header: 1\r\n\r\n", 400),
    "space before colon": (b"GET /hits HTTP/1.1\r\nHost: proxy\r\nX-A : 1\r\n\r\n", 400),
    "obsolete line folding": (b"GET /hits HTTP/1.1\r\nHost: proxy\r\nX-A: 1\r\n 2\r\n\r\n", 400),
    "NUL in a header": (b"GET /hits HTTP/1.1\r\nHost: proxy\r\nX-A: a\x00b\r\n\r\n", 400),
    "HTTP/1.1 without Host": (b"GET /hits HTTP/1.1\r\n\r\n", 400),
    "Content-Length with Transfer-Encoding":
        (post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    "two different Content-Lengths": (post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), 400),
    "unknown Transfer-Encoding": (post(b"Transfer-Encoding: xchunked\r\n"), 400),
    "chunked not last": (post(b"Transfer-Encoding: chunked, identity\r\n"), 400),
    "broken chunk size": (post(b"Transfer-Encoding: chunked\r\n", b"zz\r\nabc\r\n0\r\n\r\n"), 400),
    "header line too long": (b"GET /hits HTTP/1.1\r\nHost: proxy\r\nX-Big: " + b"a" * (MAX_LINE + 100) + b"\r\n\r\n", 431),
    "request line too long": (b"GET /" + b"a" * (MAX_LINE + 100) + b" HTTP/1.1\r\nHost: proxy\r\n\r\n", 431),
    "too many headers":
        (b"GET /hits HTTP/1.1\r\nHost: proxy\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS + 5))
         + b"\r\n", 431),
    "declared body too large": (post(b"Content-Length: %d\r\n" % (MAX_BODY + 1), b"a" * (MAX_BODY + 1)), 413),
    "chunked body grows too large":
        (post(b"Transfer-Encoding: chunked\r\n", (b"200\r\n" + b"a" * 0x200 + b"\r\n") * 3 + b"0\r\n\r\n"), 413),
    "unsupported Expect": (post(b"Content-Length: 2\r\nExpect: teapot\r\n", b"ab"), 417),
    "unsupported Expect without a body": (b"GET /hits HTTP/1.1\r\nHost: proxy\r\nExpect: teapot\r\n\r\n", 417),
    "unsupported Expect on HTTP/1.0": (b"GET /hits HTTP/1.0\r\nExpect: 100-continue, teapot\r\n\r\n", 417),
    "asterisk-form": (b"OPTIONS * HTTP/1.1\r\nHost: proxy\r\n\r\n", 421),
}


@pytest.mark.parametrize("data,status", CASES.values(), ids=CASES.keys())
def test_bad_request_gets_a_clear_4xx_and_goes_nowhere(untouched, data, status):
    proxy = untouched[0]
    answer = exchange(proxy.port, data)
    assert status_of(answer) == status, answer[:300]
    assert b'{"error": "' in answer


def test_connect_and_absolute_form_cannot_reach_another_port(untouched):
    proxy, _, stranger = untouched
    target = b"127.0.0.1:%d" % stranger.getsockname()[1]
    answer = exchange(proxy.port, b"CONNECT " + target + b" HTTP/1.1\r\nHost: " + target + b"\r\n\r\nPING\r\n")
    assert status_of(answer) == 405 and b"PING" not in answer
    answer = exchange(proxy.port, b"GET http://" + target + b"/ HTTP/1.1\r\nHost: " + target + b"\r\n\r\n")
    assert status_of(answer) == 421
    answer = exchange(proxy.port, b"GET http://localhost.evil:%d/hits HTTP/1.1\r\nHost: x\r\n\r\n" % proxy.port)
    assert status_of(answer) == 421


def test_absolute_form_naming_the_proxy_itself_is_served(stack):
    proxy = stack[0]
    answer = exchange(proxy.port, b"GET http://127.0.0.1:%d/hits HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                      % proxy.port)
    assert status_of(answer) == 200 and b'"hits":0' in answer


def test_expect_100_continue_is_answered_before_the_body(stack):
    proxy = stack[0]
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as conn:
        conn.sendall(b"GET /hits HTTP/1.1\r\nHost: proxy\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert conn.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.sendall(b"ab")
        assert status_of(conn.recv(65536)) == 200


@pytest.mark.parametrize("data", [b"GET /hits\r\n", b"\r\nGET /hits\r\n", b"GET /hits\r\nHost: proxy\r\n\r\n"],
                         ids=["line only", "after an empty line", "with headers"])
def test_request_line_without_a_version_gets_400_at_once(untouched, data):
    proxy = untouched[0]
    started = time.monotonic()
    answer = exchange(proxy.port, data)
    # At once: well before PROXY_CLIENT_TIMEOUT would have answered it 408.
    assert time.monotonic() - started < CLIENT_TIMEOUT / 2
    assert status_of(answer) == 400 and b"without an HTTP version" in answer, answer[:300]


def test_slow_headers_are_cut_off_without_slowing_anyone_else(stack):
    proxy = stack[0]
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as slow:
        slow.sendall(b"GET /hits HTTP/1.1\r\nHost: proxy\r\n")
        cut = None
        for byte in b"X-Slow: " + b"a" * 100:
            # Everyone else is served while the slow client dribbles.
            assert requests.get(proxy.url + "/hits", timeout=5).ok
            try:
                slow.sendall(bytes([byte]))
                time.sleep(0.1)
                slow.setblocking(False)
                cut = slow.recv(100)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                cut = b""
            finally:
                slow.setblocking(True)
            break
    assert cut is not None, "the slow client was never cut off"
    assert status_of(cut) in (None, 408)


def test_slow_body_gets_408(stack):
    proxy = stack[0]
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as slow:
        slow.sendall(post(b"Content-Length: 10\r\n", b"ab"))
        assert requests.get(proxy.url + "/hits", timeout=5).ok
        answer = slow.recv(65536)
    assert status_of(answer) == 408


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), method=st.sampled_from([b"GET", b"POST", b"BREW", b""]))
def test_random_bytes_never_crash_the_proxy(stack, data, method):
    proxy = stack[0]
    request = method + b" /healthz HTTP/1.1\r\nHost: p\r\nConnection: close\r\n" + data + b"\r\n\r\n"
    answer = exchange(proxy.port, request, timeout=0.5)
    assert answer == b"" or status_of(answer) is not None
    assert proxy.popen.poll() is None


def test_a_taken_port_is_one_line_naming_the_setting(procs, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "proxy"], env=process_env(PROXY_PORT=port, PROXY_BACKENDS=""),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if "cannot listen" in line]
    assert "PROXY_PORT" in line
