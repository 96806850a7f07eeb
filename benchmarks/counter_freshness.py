"""Counter freshness: from the Order Confirmed webhook's 200 to the new count being served.

    .venv/bin/python benchmarks/counter_freshness.py [--singles 100] [--bursts 5] [--burst-size 20]

gunicorn (threaded, so that an SSE client can stay connected) serves the portal and the Wix
sandbox; a django-q2 cluster works. Each order is placed on the sandbox "Wix" (one ticket of a
definition with a large limit) and the benchmark sends the signed Order Confirmed itself,
timing from the 200. One client polls ``/counter/bench/`` with its ETag every 10 ms, another
holds ``/counter/bench/events`` open; for each order, the time until each first shows a count
at or below the one after that order. Singles come idle, a second or so apart; each burst is
20 orders for the one definition back to back (they share one Get). Prints p50/p95/worst for
both clients and the number of Gets made. Goal: p95 under 2 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edit_latency import _no_enqueue
from procs import gunicorn, portal_setup, qcluster, stop
from sync_throughput import free_port, wait_for

SLUG = "bench"


class Watcher:
    """(time, unsold) as a client saw them, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, int | None]] = []
        self.lock = threading.Lock()
        self.stopping = False

    def add(self, unsold: int | None) -> None:
        with self.lock:
            if not self.seen or self.seen[-1][1] != unsold:
                self.seen.append((time.time(), unsold))

    def first_at_most(self, unsold: int) -> float | None:
        with self.lock:
            return next((t for t, u in self.seen if u is not None and u <= unsold), None)


def poll(port: int, watcher: Watcher) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    etag = ""
    while not watcher.stopping:
        try:
            conn.request("GET", f"/counter/{SLUG}/", headers={"If-None-Match": etag} if etag else {})
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        if response.status == 200:
            etag = response.getheader("ETag") or ""
            doc = json.loads(body)
            if doc["unsold"] is None:
                raise SystemExit(f"the counter shows no count: {doc}")
            watcher.add(doc["unsold"])
        time.sleep(0.01)


def stream(port: int, watcher: Watcher) -> None:
    last_id = ""
    while not watcher.stopping:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=70)
            conn.request("GET", f"/counter/{SLUG}/events", headers={"Last-Event-ID": last_id})
            response = conn.getresponse()
            while not watcher.stopping:
                line = response.readline()  # chunked framing decoded; b"" when the stream ends
                if not line:
                    time.sleep(1.0)  # the stream's time is up: reconnect after retry:, as a browser
                    break
                if line.startswith(b"id: "):
                    last_id = line[4:].strip().decode()
                if line.startswith(b"data: "):
                    watcher.add(json.loads(line[6:])["unsold"])
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)


def order(port: int, event_id: str, td_id: str) -> float:
    """Sell one ticket on the sandbox and send its Order Confirmed; returns when the 200 came."""
    from sync.sandbox import services
    from sync.sandbox.models import SandboxWebhook

    with _no_enqueue(services):
        services.order_place(event_id=event_id, quantities={td_id: 1})
    hook = SandboxWebhook.objects.order_by("-pk").first()
    assert hook is not None
    body = services.webhook_jwt(
        event_type=hook.event_type, envelope=hook.envelope, key=services.sandbox_key()
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/webhooks/wix/", body.encode(), {"Content-Type": "text/plain"})
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    return time.time()


def summary(name: str, latencies: list[float | None]) -> str:
    got = sorted(x for x in latencies if x is not None)
    missing = len(latencies) - len(got)

    def pct(p: float) -> float:
        return got[min(len(got) - 1, int(p * len(got)))] if got else float("nan")

    text = f"{name}: p50 {pct(0.5):.2f} s, p95 {pct(0.95):.2f} s, worst {pct(1.0):.2f} s over {len(got)}"
    return text + (f" ({missing} NEVER SEEN)" if missing else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--singles", type=int, default=100)
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--burst-size", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    port = free_port()
    env = portal_setup(
        port=port, cluster_name=f"fresh{port}", prefix="portal-fresh-", Q_WORKERS=str(args.workers)
    )
    from django.db import connection

    from notifications.counters.services import counter_publish
    from notifications.models import TicketCounter
    from sync.models import TicketDefinitionRefresh
    from sync.sandbox import services
    from sync.sandbox.demo import demo_id, sandbox_seed
    from sync.services.mirrors import ticket_definition_upsert_from_wix

    site = sandbox_seed()
    event_id = demo_id("event:spring-gala")
    with _no_enqueue(services):
        created = services.entity_create(
            kind="ticket_definition",
            data={
                "eventId": event_id,
                "name": "Benchmark",
                "initialLimit": 100_000,
                "pricingMethod": {"fixedPrice": {"value": "20.00", "currency": "EUR"}},
                "feeType": "NO_FEE",
            },
        )
    td_id = created["ticketDefinition"]["id"]
    data = services.entity_get(kind="ticket_definition", wix_id=td_id, fields=["SALES_DETAILS"])[
        "ticketDefinition"
    ]
    ticket_definition_upsert_from_wix(site=site, data=data)
    counter = TicketCounter.objects.create(
        site=site, slug=SLUG, ticket_definition_wix_id=td_id, threshold=1_000_000
    )
    counter_publish(counter=counter)
    unsold = 100_000

    processes = [
        gunicorn(
            env, port, "-w", "2", "--worker-class", "gthread", "--threads", "8", "--log-level", "warning"
        )
    ]
    polled, streamed = Watcher(), Watcher()
    singles: list[tuple[float, int]] = []
    bursts: list[tuple[float, int]] = []
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        processes.append(qcluster(env))
        for target, watcher in ((poll, polled), (stream, streamed)):
            threading.Thread(target=target, args=(port, watcher), daemon=True).start()
        time.sleep(3)  # the cluster starts
        rng = random.Random(13)
        for _ in range(args.singles):
            time.sleep(rng.uniform(0.5, 1.5))
            unsold -= 1
            singles.append((order(port, event_id, td_id), unsold))
        for _ in range(args.bursts):
            time.sleep(2)
            for _ in range(args.burst_size):
                unsold -= 1
                bursts.append((order(port, event_id, td_id), unsold))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and polled.first_at_most(unsold) is None:
            time.sleep(0.1)
        time.sleep(1)
        gets = TicketDefinitionRefresh.objects.count()
    finally:
        polled.stopping = streamed.stopping = True
        stop(reversed(processes))

    def latencies(orders: list[tuple[float, int]], watcher: Watcher) -> list[float | None]:
        out: list[float | None] = []
        for sent, expected in orders:
            seen = watcher.first_at_most(expected)
            out.append(None if seen is None else max(0.0, seen - sent))
        return out

    window = env.get("TICKET_REFRESH_WINDOW_SECONDS", "0.5")
    print(f"database: {connection.vendor}; {args.workers} workers; refresh window {window} s")
    kinds = f"{len(singles)} single, {args.bursts} bursts of {args.burst_size}"
    print(f"orders: {len(singles) + len(bursts)} ({kinds}); Gets made: {gets}")
    everything = singles + bursts
    for name, watcher in (("endpoint (polled every 10 ms)", polled), ("SSE client", streamed)):
        print(summary(f"  {name}, all", latencies(everything, watcher)))
        print(summary(f"  {name}, singles", latencies(singles, watcher)))
        print(summary(f"  {name}, in bursts", latencies(bursts, watcher)))


if __name__ == "__main__":
    main()
