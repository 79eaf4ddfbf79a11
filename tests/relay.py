"""A real TCP hop in front of one web instance, for tests that must see what the proxy sent or lose its answer.

    relay = Relay(web.port, withhold=0)        # passes every answer on whole, then closes
    proxy = procs.proxy(PROXY_BACKENDS=relay.address)
    relay.requests                             # the raw requests, as the proxy sent them

Tests get them through the ``relay_factory`` fixture (tests/conftest.py), which closes them.
"""
import re
import socket
import struct
import threading


def read_request(conn):
    """One HTTP request's raw bytes off a socket (headers, then Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while length and len(body) < int(length.group(1)):
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


class Relay:
    """A real TCP hop in front of one web instance that passes each request on, then loses the answer.

    The web instance does the work (and counts the hit), but the proxy gets back
    nothing and a reset (``withhold=None``), or the response minus its last
    ``withhold`` bytes and a close. ``requests`` keeps the raw requests as the proxy sent them.
    """

    def __init__(self, target_port, withhold=None):
        self.target_port, self.withhold = target_port, withhold
        self.requests = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn):
        with conn:
            request = read_request(conn)
            if request is None:
                return
            self.requests.append(request)
            # Connection: close makes gunicorn end the response by closing, so recv-to-EOF reads it whole.
            request = request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
            with socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
                upstream.sendall(request)
                response = b"".join(iter(lambda: upstream.recv(65536), b""))
            if self.withhold is None:
                # SO_LINGER 0: close with a reset, as a killed process's socket may.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.sendall(response[:len(response) - self.withhold])

    def close(self):
        self.listener.close()
