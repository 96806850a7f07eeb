"""A ticketing target for benchmarks: answers every call after a fixed delay.

Run as ``python benchmarks/slow_target.py PORT DELAY_MS``. ``GET /stats`` answers the
calls it received, and how many creates repeated an Idempotency-Key (duplicates);
``GET /log`` every write as ``[time received, method, body]``.
"""

from __future__ import annotations

import itertools
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DELAY = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.02
ids = itertools.count(1)
lock = threading.Lock()
stats = {"POST": 0, "PUT": 0, "DELETE": 0, "duplicate_creates": 0}
keys: set[str] = set()
writes: list[list[object]] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; without this, Nagle + delayed ACK add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _work(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        received = time.time()
        time.sleep(DELAY)
        with lock:
            stats[self.command] += 1
            key = self.headers.get("Idempotency-Key")
            if self.command == "POST" and key:
                stats["duplicate_creates"] += key in keys
                keys.add(key)
            new_id = next(ids)
            writes.append([received, self.command, json.loads(body or b"null")])
        self._answer(201 if self.command == "POST" else 200, {"id": new_id})

    do_POST = do_PUT = do_DELETE = _work

    def do_GET(self) -> None:
        with lock:
            self._answer(200, {"writes": writes} if self.path == "/log" else dict(stats))


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
