"""The session workload's Locust user: visitors who sign in, fill a cart, read it after every add, sign out.

    $ locust -f bench/locustfile.py --workload session --headless -u 16 -t 60s --host http://127.0.0.1:8000

Each visit is one visitor, named by the key of its sign-in
(``<run>:<process>.<user>:<seq>``), with a cookie jar of its own. Every
request carries an Idempotency-Key and is journaled as a typed event
(``session.signin``, ``session.add`` with its item, ``session.read`` with the
cart it saw, ``session.signout``) for bench/verdict/sessions.py. A 401 ends
the visit: the server no longer knows the session, which the checker names.
"""
import random

from locust import between, task

from bench.load.tries import Retryable, call
from bench.load.users import JournaledUser

SIGNIN, ADD, READ, SIGNOUT = "session.signin", "session.add", "session.read", "session.signout"
ADDS = (2, 6)  # items per visit, at random in this range


class VisitorUser(JournaledUser):
    workload = "session"
    wait_time = between(0, 0.02)

    def op(self, name, method, path, label, visitor, body=None, **asked):
        """One journaled operation; its Answer, or None when its outcome is unknown."""
        journal, key = self.journal, self.next_key()
        journal.invoke(key, op=name, visitor=visitor, **asked)
        try:
            answer = call(self, method, path, label, key=key, json=body)
        except Retryable:
            journal.complete(key, "info", op=name)
            return None
        result = {"instance": answer.instance}
        if not answer.ok:
            result.update(status=answer.status, error=answer.error)
        elif name == READ:
            result["cart"] = answer.data.get("cart")
        journal.complete(key, "ok" if answer.ok else "fail", op=name, **result)
        return answer

    @task
    def visit(self):
        self.client.cookiejar.clear()  # a new visitor: no cookie of the last one
        visitor = self.next_key()
        signed_in = self.op(SIGNIN, "POST", "/session", "POST /session", visitor, body={"visitor": visitor})
        if not (signed_in and signed_in.ok):
            return
        for n in range(1, random.randint(*ADDS) + 1):
            for step in ((ADD, "POST", "/cart/items", "POST /cart/items", {"item": f"i{n}"}),
                         (READ, "GET", "/cart", "GET /cart", None)):
                name, method, path, label, body = step
                answer = self.op(name, method, path, label, visitor, body=body, **(body or {}))
                if answer and answer.status == 401:
                    return
        self.op(SIGNOUT, "DELETE", "/session", "DELETE /session", visitor)
