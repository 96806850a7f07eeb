"""First upload into a real pretix: N events x (10 ticket definitions + 3 policies).

Starts the local pretix from ../shared/pretix (setup is idempotent), deletes every event of
its organizer "demo", then backfills the Wix sandbox (served by gunicorn) into it with a
django-q2 cluster of W workers on a fresh SQLite database (or DATABASE_URL). Prints the time
to the last push, entities per second, the HTTP calls each entity took and pretix's answer
times; then reads pretix back to check every event, item, quota and confirm text, and runs
a second backfill, which must make no call at all.

    .venv/bin/python benchmarks/pretix_sync.py [--events 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "pretix"
PRETIX_HOME = Path(os.environ.get("PRETIX_HOME", Path.home() / ".local/share/pretix-local"))
PRETIX_URL = f"http://127.0.0.1:{os.environ.get('PRETIX_PORT', '8345')}"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from procs import gunicorn, portal_setup, qcluster, stop  # noqa: E402
from sync_throughput import free_port, peak_rss_mb, sandbox_fill, wait_for  # noqa: E402


def pretix_start() -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    for script in ("setup.sh", "start.sh"):
        subprocess.run(["bash", str(SHARED / script)], env=env, check=True, capture_output=True, timeout=1200)
    return (PRETIX_HOME / "token").read_text().strip()


def pretix_clear(session: requests.Session, api: str) -> None:
    while True:
        events = session.get(f"{api}/events/", timeout=60).json()["results"]
        if not events:
            return
        for event in events:
            session.delete(f"{api}/events/{event['slug']}/", timeout=60).raise_for_status()


def drain_wait(expected: int, timeout: float) -> float:
    from sync.models import OutboundWork

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        open_work = OutboundWork.objects.exclude(status__in=["done", "dead"]).count()
        if OutboundWork.objects.count() >= expected and open_work == 0:
            break
        time.sleep(0.5)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    token = pretix_start()
    api = f"{PRETIX_URL}/api/v1/organizers/demo"
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    pretix_clear(session, api)

    web_port = free_port()
    env = portal_setup(
        port=web_port,
        cluster_name=f"pretixbench{web_port}",
        prefix="portal-bench-",
        Q_WORKERS=str(args.workers),
        Q_POLL="0.2",
        EXTERNAL_PRETIX_TOKEN=token,
    )
    from django.db import connection
    from django.db.models import Count

    from sync.models import BackfillRun, ExternalSystem, OutboundWork, SyncLog, WixSite
    from sync.services.backfill import backfill_start
    from sync.services.pretix import pretix_system_ensure

    sandbox_fill(args.events)
    ExternalSystem.objects.update(is_active=False)
    pretix_system_ensure(url=PRETIX_URL, organizer="demo", token_env="EXTERNAL_PRETIX_TOKEN")  # noqa: S106
    entities = args.events * 14
    print(
        f"database: {connection.vendor}; {args.events} events = {entities} entities; {args.workers} workers"
    )

    web = gunicorn(env, web_port, "-w", "2", "--threads", "4", "--log-level", "warning")
    processes = [web]
    try:
        wait_for(f"http://127.0.0.1:{web_port}/healthz")
        cluster = qcluster(env)
        processes.append(cluster)
        time.sleep(2)
        site = WixSite.objects.get()
        backfill_start(site=site, trigger=BackfillRun.Trigger.COMMAND)
        total = drain_wait(entities, args.timeout)
        calls = SyncLog.objects.count()
        durations = sorted(SyncLog.objects.values_list("duration_ms", flat=True))
        worker_peak, cluster_peak = peak_rss_mb(cluster.pid)

        backfill_start(site=site, trigger=BackfillRun.Trigger.COMMAND)
        while BackfillRun.objects.filter(status__in=BackfillRun.ACTIVE_STATUSES).exists():
            time.sleep(0.5)
        drain_wait(entities, args.timeout)
        second_calls = SyncLog.objects.count() - calls
    finally:
        stop(reversed(processes))

    states = dict(
        OutboundWork.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    outcomes = dict(
        OutboundWork.objects.values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n")
    )
    print(f"work rows: {states}; outcomes {outcomes}")
    print(f"total time (backfill + every push done): {total:.1f} s; {entities / total:.1f} entities/s")
    print(f"HTTP calls to pretix: {calls} ({calls / entities:.1f} per entity)")
    print(
        f"pretix answer time: p50 {durations[len(durations) // 2]} ms, "
        f"p95 {durations[int(len(durations) * 0.95)]} ms, max {durations[-1]} ms"
    )
    print(f"peak memory: largest process {worker_peak:.0f} MB, whole cluster {cluster_peak:.0f} MB")

    events = session.get(f"{api}/events/?page_size=1000", timeout=60).json()["results"]
    items = quotas = texts = 0
    for event in events:
        slug = event["slug"]
        items += session.get(f"{api}/events/{slug}/items/", timeout=60).json()["count"]
        quotas += session.get(f"{api}/events/{slug}/quotas/", timeout=60).json()["count"]
        texts += len(session.get(f"{api}/events/{slug}/settings/", timeout=60).json()["confirm_texts"])
    print(f"pretix holds: {len(events)} events, {items} items, {quotas} quotas, {texts} confirm texts")
    print(f"second backfill: {second_calls} calls")
    ok = (
        states.get("dead", 0) == 0
        and (len(events), items, quotas, texts)
        == (args.events, args.events * 10, args.events * 10, args.events * 3)
        and second_calls == 0
    )
    print("check:", "every record in pretix once, and nothing resent" if ok else "INCOMPLETE")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
