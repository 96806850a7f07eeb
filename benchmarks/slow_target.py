"""A ticketing target for benchmarks and the concurrency proof.

Run as ``python benchmarks/slow_target.py PORT [DELAY_MS] [FAIL_RATE]``. Every write is answered
after ``DELAY_MS``; a share ``FAIL_RATE`` of them fails (503, chosen before anything is
applied, so a failed call changes nothing). A create honours ``Idempotency-Key``: a repeated
key gets the record the first create made (and is counted as a duplicate).

``GET /stats`` answers the calls it applied and the duplicate creates; ``GET /log`` every
applied write as ``[time received, method, record id, body]``, in order.
"""

from __future__ import annotations

import itertools
import json
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DELAY = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.02
FAIL_RATE = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
ids = itertools.count(1)
lock = threading.Lock()
stats = {"POST": 0, "PUT": 0, "DELETE": 0, "duplicate_creates": 0, "failed": 0}
by_key: dict[str, str] = {}
writes: list[list[object]] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; without this, Nagle + delayed ACK add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _work(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        received = time.time()
        time.sleep(DELAY)
        with lock:
            if random.random() < FAIL_RATE:
                stats["failed"] += 1
                self._answer(503, {"error": "injected failure"})
                return
            key = self.headers.get("Idempotency-Key") or ""
            if self.command == "POST" and key in by_key:
                stats["duplicate_creates"] += 1
                self._answer(201, {"id": by_key[key]})  # the create already happened
                return
            if self.command == "POST":
                record_id = by_key[key] = str(next(ids))
            else:
                record_id = self.path.rstrip("/").rsplit("/", 1)[-1]
            stats[self.command] += 1
            writes.append([received, self.command, record_id, body])
        self._answer(201 if self.command == "POST" else 200, {"id": record_id})

    do_POST = do_PUT = do_DELETE = _work

    def do_GET(self) -> None:
        with lock:
            self._answer(200, {"writes": writes, **stats} if self.path == "/log" else dict(stats))


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
