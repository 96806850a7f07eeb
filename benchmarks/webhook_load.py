"""Webhook ingestion under load: time to the 200 at rising rates, then exactly-once processing.

gunicorn serves the portal on a fresh SQLite database (or DATABASE_URL); a separate load
process sends pre-signed Wix deliveries (policy and ticket-definition updates, deletions,
Order Confirmed, an unknown type; 5% duplicates) on loopback at rising rates. For each
rate it reports what was sustained and p50/p99 of the time to the answer. Afterwards a
django-q2 cluster processes everything, and the run checks that every unique delivery
was stored once and processed exactly once.

    .venv/bin/python benchmarks/webhook_load.py [--rates 100,200,400,600] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from procs import gunicorn, portal_setup, qcluster, stop  # noqa: E402

from benchmarks.sync_throughput import free_port, wait_for  # noqa: E402


def load(port: int, bodies_file: str, rate: float, seconds: float, threads: int, offset: int) -> dict:
    """Open-loop-ish load: each thread sends on its own schedule over a keep-alive connection."""
    bodies = [b.encode() for b in json.loads(Path(bodies_file).read_text())]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    per_thread = rate / threads
    deadline = time.monotonic() + seconds
    counter = iter(range(offset, 10**9))  # each step sends bodies the earlier ones did not

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        next_at = time.monotonic() + random.random() / per_thread
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if next_at > now:
                time.sleep(next_at - now)
            next_at += 1 / per_thread
            body = bodies[next(counter) % len(bodies)]
            start = time.monotonic()
            try:
                conn.request("POST", "/webhooks/wix/", body=body, headers={"Content-Type": "text/plain"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except Exception:
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            elapsed = time.monotonic() - start
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    latencies.sort()
    sent = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(sent - 1, int(p * sent))] * 1000 if sent else float("nan")

    return {
        "rate": rate,
        "sent": sent,
        "achieved": sent / seconds,
        "p50": pct(0.5),
        "p99": pct(0.99),
        "errors": sent - statuses.get(200, 0),
        "statuses": statuses,
    }


def make_bodies(count: int) -> tuple[list[bytes], int]:
    """Signed deliveries in the sandbox's shapes; returns them and how many are unique."""
    from sync.sandbox.demo import demo_id
    from sync.sandbox.models import SandboxEntity
    from sync.sandbox.services import sandbox_key, webhook_jwt

    key = sandbox_key()
    policies = list(SandboxEntity.objects.filter(kind="policy").values_list("data", flat=True))
    tds = list(SandboxEntity.objects.filter(kind="ticket_definition").values_list("data", flat=True))
    unique: list[bytes] = []
    for n in range(count):
        kind = n % 10
        if kind < 4:
            entity = {**random.choice(policies)}
            entity["revision"] = str(2 + n)
            fqdn, event_type, slug = "wix.events.v2.policy", "wix.events.v2.policy_updated", "updated"
        elif kind < 8:
            entity = {**random.choice(tds)}
            entity["revision"] = str(2 + n)
            fqdn, event_type, slug = (
                "wix.events.v3.ticket_definition",
                "wix.events.v3.ticket_definition_updated",
                "updated",
            )
        if kind < 8:
            envelope = {
                "id": f"bench-{n}",
                "entityFqdn": fqdn,
                "slug": slug,
                "entityId": entity["id"],
                "eventTime": "2026-11-24T10:00:00Z",
                "updatedEvent": {"currentEntityAsJson": json.dumps(entity)},
            }
        elif kind == 8:
            event_type = "wix.events.v1.order_order-confirmed"
            envelope = {
                "timestamp": f"2026-11-24T10:00:{n % 60:02d}.{n:06d}Z",
                "eventId": demo_id("event:spring-gala"),
                "orderNumber": f"ORDER-{n}",
                "tickets": [{"ticketDefinitionId": demo_id("td:spring-gala:ga"), "ticketNumber": f"T{n}"}],
            }
        else:
            # A type the portal has no route for: stored and acknowledged, never processed.
            event_type = "wix.bookings.v2.booking_created"
            envelope = {
                "id": f"bench-{n}",
                "entityFqdn": "wix.bookings.v2.booking",
                "slug": "created",
                "entityId": f"booking-{n}",
            }
        unique.append(webhook_jwt(event_type=event_type, envelope=envelope, key=key, lifetime=7200).encode())
    duplicates = random.sample(unique, max(1, len(unique) // 20))  # 5% sent twice
    bodies = unique + duplicates
    random.shuffle(bodies)
    return bodies, len(unique)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="100,200,300,400,500,600")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument(
        "--load", nargs=5, metavar=("PORT", "BODIES", "RATE", "SECONDS", "OFFSET"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.load:
        port, bodies_file, rate, seconds, offset = args.load
        print(
            json.dumps(load(int(port), bodies_file, float(rate), float(seconds), args.threads, int(offset)))
        )
        return

    port = free_port()
    env = portal_setup(port=port, cluster_name=f"hooks{port}", prefix="portal-hooks-", LOG_LEVEL="ERROR")
    data_dir = env["PORTAL_DATA_DIR"]
    from django.db import connection
    from django.db.models import Count

    from sync.models import WebhookDelivery
    from sync.sandbox.demo import sandbox_seed

    sandbox_seed()
    rates = [float(r) for r in args.rates.split(",")]
    # Enough bodies that no step repeats an earlier one (the warm-up sends 30/s).
    bodies, _ = make_bodies(int((30 + sum(rates)) * args.seconds * 1.05))
    bodies_file = Path(data_dir) / "bodies.json"
    bodies_file.write_text(json.dumps([b.decode() for b in bodies]))
    print(
        f"database: {connection.vendor}; gunicorn {args.gunicorn_workers} sync workers on "
        f"{os.cpu_count()} cores; {len(bodies)} signed bodies (5% duplicates), {args.threads} load threads"
    )

    server = gunicorn(env, port, "-w", str(args.gunicorn_workers), "--log-level", "error")
    results = []
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        # Warm-up (not counted): fresh gunicorn workers open their database connections.
        warm = [30.0, *rates]
        for step, rate in enumerate(warm):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--threads",
                    str(args.threads),
                    "--load",
                    str(port),
                    str(bodies_file),
                    str(rate),
                    str(args.seconds),
                    str(sum(r["sent"] for r in results)),
                ],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(result)
            if step == 0:
                continue
            print(
                f"  offered {rate:6.0f}/s: sustained {result['achieved']:6.1f}/s, "
                f"p50 {result['p50']:5.1f} ms, "
                f"p99 {result['p99']:6.1f} ms, errors {result['errors']}"
            )
        measured = results[1:]
        good = [r for r in measured if r["errors"] == 0 and r["achieved"] >= 0.95 * r["rate"]]
        best = max(good, key=lambda r: r["rate"]) if good else None
        if best:
            verdict = "meets" if best["p99"] < 50 else "misses"
            print(
                f"highest rate sustained without errors: {best['achieved']:.0f}/s, p50 {best['p50']:.1f} ms, "
                f"p99 {best['p99']:.1f} ms ({verdict} the 50 ms p99 goal; Wix allows 1250 ms)"
            )
        # Exactly once: the workers process everything stored (the server stays up: Order
        # Confirmed reads the sandbox's Wix API, and pushes go to its ticketing API).
        started = time.monotonic()
        cluster = qcluster(env)
        try:
            deadline = time.monotonic() + 900
            while (
                time.monotonic() < deadline
                and WebhookDelivery.objects.filter(status__in=["received", "processing"]).exists()
            ):
                time.sleep(1)
        finally:
            stop([cluster], grace=30)
        print(f"processing took {time.monotonic() - started:.0f} s")
    finally:
        stop([server])

    offered = set(bodies[: sum(r["sent"] for r in results)])
    stored = WebhookDelivery.objects.count()
    counts = WebhookDelivery.objects.values_list("status").annotate(n=Count("pk"))
    by_status = dict(counts.values_list("status", "n"))
    twice = WebhookDelivery.objects.filter(attempts__gt=1).count()
    print(
        f"unique deliveries offered {len(offered)}, stored {stored} {by_status}; "
        f"processed more than once: {twice}"
    )
    ok = stored == len(offered) and twice == 0 and not set(by_status) & {"failed", "received", "processing"}
    print("check:", "every unique delivery stored once and processed exactly once" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
