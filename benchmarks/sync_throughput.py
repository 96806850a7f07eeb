"""Backfill and push benchmark: N events x 10 ticket definitions + 3 policies.

The Wix sandbox (served by gunicorn) holds the events; a separate target process answers
every push after DELAY ms; a django-q2 cluster with W workers runs the backfill and the
pushes on a fresh SQLite database (or DATABASE_URL). Prints entities per second, total
time, peak memory, and the push rate as a share of the limit the target's latency allows
(W workers x 1000/DELAY pushes a second).

    .venv/bin/python benchmarks/sync_throughput.py [--events 1000] [--workers 4] [--delay-ms 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from procs import gunicorn, portal_setup, qcluster, spawn, stop  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback only
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def peak_rss_mb(root_pid: int) -> tuple[float, float]:
    """Peak resident memory (VmHWM) of a process tree: the largest process, and the sum."""
    pids = [root_pid]
    children = subprocess.run(["pgrep", "-P", str(root_pid)], capture_output=True, text=True).stdout.split()
    pids += [int(p) for p in children]
    peaks = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            pass
    return (max(peaks, default=0.0), sum(peaks))


def seed(events: int, target_url: str) -> None:
    from sync.models import EntityType, ExternalSystem
    from sync.sandbox.ticketing import rest_system_configure

    sandbox_fill(events)
    system = ExternalSystem.objects.create(name="Benchmark target", base_url=target_url, auth_type="none")
    rest_system_configure(system, {EntityType.POLICY: "policies", EntityType.TICKET_DEFINITION: "tickets"})


def sandbox_fill(events: int) -> None:
    """N events in the Wix sandbox, each with 3 policies and 10 ticket definitions."""
    from sync.sandbox.demo import sandbox_site_ensure
    from sync.sandbox.models import SandboxEntity

    now = dt.datetime.now(dt.UTC)
    iso = now.isoformat().replace("+00:00", "Z")
    rows = []
    for e in range(events):
        event_id = str(uuid.uuid4())
        start = (now + dt.timedelta(days=30 + e % 200)).isoformat().replace("+00:00", "Z")
        rows.append(
            SandboxEntity(
                kind="event",
                wix_id=event_id,
                created_date=now + dt.timedelta(microseconds=e),
                data={
                    "id": event_id,
                    "title": f"Event {e}",
                    "slug": f"event-{e}",
                    "status": "UPCOMING",
                    "dateAndTimeSettings": {"startDate": start},
                    "createdDate": iso,
                    "updatedDate": iso,
                },
            )
        )
        for p in range(3):
            pid = str(uuid.uuid4())
            rows.append(
                SandboxEntity(
                    kind="policy",
                    wix_id=pid,
                    event_wix_id=event_id,
                    created_date=now,
                    data={
                        "id": pid,
                        "revision": "1",
                        "eventId": event_id,
                        "name": f"Policy {p}",
                        "body": "<p>Terms.</p>",
                        "createdDate": iso,
                        "updatedDate": iso,
                    },
                )
            )
        for t in range(10):
            tid = str(uuid.uuid4())
            if t < 7:
                pricing = {
                    "fixedPrice": {"value": f"{10 + t}.00", "currency": "EUR"},
                    "pricingType": "STANDARD",
                    "free": False,
                }
            else:
                pricing = {
                    "pricingOptions": {
                        "optionDetails": [
                            {
                                "optionId": str(uuid.uuid4()),
                                "name": "Adult",
                                "price": {"value": "30.00", "currency": "EUR"},
                            },
                            {
                                "optionId": str(uuid.uuid4()),
                                "name": "Child",
                                "price": {"value": "15.00", "currency": "EUR"},
                            },
                        ]
                    },
                    "pricingType": "STANDARD",
                    "free": False,
                }
            rows.append(
                SandboxEntity(
                    kind="ticket_definition",
                    wix_id=tid,
                    event_wix_id=event_id,
                    created_date=now,
                    data={
                        "id": tid,
                        "revision": "1",
                        "eventId": event_id,
                        "name": f"Ticket {t}",
                        "description": "Seat.",
                        "hidden": False,
                        "limited": True,
                        "initialLimit": 100,
                        "actualLimit": 100,
                        "pricingMethod": pricing,
                        "feeType": "FEE_INCLUDED",
                        "saleStatus": "SALE_STARTED",
                        "salesDetails": {
                            "unsoldCount": 100,
                            "soldCount": 0,
                            "reservedCount": 0,
                            "soldOut": False,
                        },
                        "createdDate": iso,
                        "updatedDate": iso,
                    },
                )
            )
    SandboxEntity.objects.bulk_create(rows, batch_size=2000)
    sandbox_site_ensure()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    web_port, target_port = free_port(), free_port()
    env = portal_setup(
        port=web_port,
        cluster_name=f"bench{web_port}",
        prefix="portal-bench-",
        Q_WORKERS=str(args.workers),
        Q_POLL="0.2",
    )
    from django.db import connection
    from django.db.models import Count

    from sync.models import BackfillRun, OutboundWork, WixSite
    from sync.services.backfill import backfill_start

    seed(args.events, f"http://127.0.0.1:{target_port}")
    entities = args.events * 14
    pushes = args.events * 13
    print(
        f"database: {connection.vendor}; {args.events} events = {entities} entities, {pushes} pushes; "
        f"{args.workers} workers; target delay {args.delay_ms:.0f} ms"
    )

    processes = [
        spawn(
            [sys.executable, str(ROOT / "benchmarks/slow_target.py"), str(target_port), str(args.delay_ms)],
            env=env,
        ),
        gunicorn(env, web_port, "-w", "2", "--threads", "4", "--log-level", "warning"),
    ]
    try:
        wait_for(f"http://127.0.0.1:{target_port}/stats")
        wait_for(f"http://127.0.0.1:{web_port}/healthz")
        cluster = qcluster(env)
        processes.append(cluster)
        time.sleep(2)
        started = time.monotonic()
        run, _ = backfill_start(site=WixSite.objects.get(), trigger=BackfillRun.Trigger.COMMAND)
        backfill_done = first_push = None
        done_at_backfill = 0
        while time.monotonic() - started < args.timeout:
            time.sleep(0.5)
            run.refresh_from_db()
            done = OutboundWork.objects.filter(status=OutboundWork.Status.DONE).count()
            if backfill_done is None and run.status not in BackfillRun.ACTIVE_STATUSES:
                backfill_done, done_at_backfill = time.monotonic() - started, done
            if first_push is None and done:
                first_push = time.monotonic() - started
            if backfill_done is not None and done == pushes:
                break
        total = time.monotonic() - started
        worker_peak, cluster_peak = peak_rss_mb(cluster.pid)
        stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{target_port}/stats").read())
    finally:
        stop(reversed(processes))

    run.refresh_from_db()
    states = dict(
        OutboundWork.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    push_window = total - (first_push or 0)
    push_rate = pushes / push_window if push_window else 0
    limit = args.workers * 1000 / args.delay_ms
    print(
        f"backfill run: {run.status}, fetched {run.fetched}, created {run.created}, failed {run.failed}; "
        f"mirrored in {backfill_done or float('nan'):.1f} s"
    )
    print(f"work rows: {states}; target saw {stats}")
    print(f"total time (backfill + every push done): {total:.1f} s")
    print(f"entities per second (end to end): {entities / total:.1f}")
    print(
        f"push rate: {push_rate:.1f}/s over {push_window:.1f} s; limit at {args.workers} workers x "
        f"{args.delay_ms:.0f} ms = {limit:.0f}/s; ratio {push_rate / limit:.0%}"
    )
    during = done_at_backfill / (backfill_done - (first_push or 0)) if backfill_done else 0
    after = (
        (pushes - done_at_backfill) / (total - backfill_done)
        if backfill_done and total > backfill_done
        else 0
    )
    print(
        f"push rate while the backfill runs: {during:.1f}/s; "
        f"after it: {after:.1f}/s ({after / limit:.0%} of limit)"
    )
    print(f"peak memory: largest process {worker_peak:.0f} MB, whole cluster {cluster_peak:.0f} MB")
    ok = run.status == "succeeded" and states.get("done") == pushes and stats["duplicate_creates"] == 0
    print("check:", "every entity pushed once" if ok else "INCOMPLETE")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
