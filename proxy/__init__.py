"""The proxy process type: one front door, least-loaded over the web instances in the registry.

    $ python -m proxy                     # 127.0.0.1:$PROXY_PORT, backends from the Redis registry
    $ curl -si http://127.0.0.1:8000/hits | grep -i '^x-'
    X-Served-By: web.2;pid=4242
    X-Backend: 127.0.0.1:5101
    X-Proxy-Tries: 1
    X-Request-Id: 7c9e6679...

It routes around dead, restarting and new processes and never turns a crash
into a double hit: a try that may have reached a backend is repeated only
under an ``Idempotency-Key`` (see ``proxy.forward``). It runs on uvloop, parses
HTTP with httptools (llhttp) on both sides, and keeps its own keep-alive
connections to the backends. Modules, one job each: ``config`` settings,
``discovery`` registry reading, ``backends`` choice and health, ``server`` the
client connections and the refusals that need no backend, ``request`` one
request and the ways to answer it, ``client`` the backend connections,
``headers``, ``forward`` the retry policy, ``sticky`` the optional visitor pins
(``PROXY_STICKY=cookie``), ``app`` the proxy's own paths and the target check,
``metrics``, ``accesslog``, ``__main__`` wiring and SIGTERM.
"""
