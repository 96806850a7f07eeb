"""A ticketing target that records what it applied, and fails a share of calls.

Run as ``python tests/recording_target.py PORT FAIL_RATE``. It keeps records per collection;
a create honours ``Idempotency-Key`` (a retried create returns the record it made), and a
failed call (503, chosen at random before anything is applied) changes nothing.
``GET /log`` answers every applied write: ``[method, record id, body]`` in order.
"""

from __future__ import annotations

import itertools
import json
import random
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAIL_RATE = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
ids = itertools.count(1)
lock = threading.Lock()
by_key: dict[str, str] = {}
applied: list[list[object]] = []
failed = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _write(self) -> None:
        global failed
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        with lock:
            if random.random() < FAIL_RATE:
                failed += 1
                self._answer(503, {"error": "injected failure"})
                return
            if self.command == "POST":
                key = self.headers.get("Idempotency-Key") or ""
                record_id = by_key.get(key) or str(next(ids))
                if key in by_key:
                    self._answer(201, {"id": record_id})  # the create already happened
                    return
                by_key[key] = record_id
            else:
                record_id = self.path.rstrip("/").rsplit("/", 1)[-1]
            applied.append([self.command, record_id, body])
        self._answer(201 if self.command == "POST" else 200, {"id": record_id})

    do_POST = do_PUT = do_DELETE = _write

    def do_GET(self) -> None:
        with lock:
            self._answer(200, {"applied": applied, "failed": failed})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
