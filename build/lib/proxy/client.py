"""The proxy's HTTP client for backends: pooled keep-alive, no hidden retries, a verdict on every failure.

    async with create_session(config) as session:
        try:
            response = await session.request("POST", "http://127.0.0.1:5100/hits", allow_redirects=False)
        except NotDelivered:       # nothing reached the backend: safe to try another
            ...
        except PossiblyDelivered:  # the backend may have acted: only a keyed request may go again
            ...

Both verdicts are raised before any response byte exists; failures while a
response body streams are the caller's to handle.
"""
import asyncio

import aiohttp

# gunicorn closes an idle keep-alive connection after 5 s; closing ours sooner means
# a request rarely lands on a socket the backend is closing at that very moment.
IDLE_KEEPALIVE = 2.0


class NotDelivered(aiohttp.ClientConnectionError):
    """The connection was never made (refused, connect timeout): no byte reached the backend."""


class PossiblyDelivered(aiohttp.ClientConnectionError):
    """The request was (maybe partly) sent and no response head came back: the outcome is unknown."""


def describe(exc):
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def classify_failures(request, handler):
    """Client middleware that sorts failures into the two verdicts.

    It also switches off aiohttp's own retry: aiohttp re-sends a GET, PUT or DELETE
    once when a pooled connection turns out dead (ClientOSError or
    ServerDisconnectedError), with no option to stop it. For this app's counting
    ``GET /`` that is the double hit the proxy exists to prevent. aiohttp only
    retries those two types, so raising ours from here bypasses it.
    """
    try:
        return await handler(request)
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
        raise NotDelivered(describe(exc)) from exc
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise PossiblyDelivered(describe(exc)) from exc


def create_session(config):
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=IDLE_KEEPALIVE),
        middlewares=(classify_failures,),
        # sock_read bounds the wait for the response head and each stall in its body.
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout, sock_read=config.timeout),
        # Bodies and headers pass through as they are: no decompression, no cookies kept
        # from one client's response for another's request, no headers the client did not send.
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )
