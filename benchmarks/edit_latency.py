"""Idle latency: how long one edit on Wix takes to reach the ticketing system.

    .venv/bin/python benchmarks/edit_latency.py [--samples 40] [--workers 2]

gunicorn serves the portal and the Wix sandbox, a django-q2 cluster works, a target answers
after 20 ms. After a backfill has pushed everything, each sample edits a sandbox policy on
"Wix" and sends the signed Policy Updated webhook Wix would send; the time from sending it to
the target receiving the new name is the latency. Samples are a second or more apart (the
portal is idle between them), and every other sample is a pair of edits 0.1 s apart (the
second one timed): the case where a queued task used to be counted as a push worker. Prints
p50, p95 and the worst, and checks every edit arrived.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import gunicorn, portal_setup, qcluster, spawn, stop
from sync_throughput import ROOT, free_port, seed, wait_for


def _target_names(port: int) -> dict[str, float]:
    """Each title the target received, with when it first arrived."""
    log = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/log", timeout=10).read())
    seen: dict[str, float] = {}
    for received, _method, _record, body in log["writes"]:
        name = (body or {}).get("name")
        if isinstance(name, str):
            seen.setdefault(name, received)
    return seen


def _edit_and_send(port: int, policy: dict, name: str) -> float:
    """Edit a policy on the sandbox "Wix" and send the webhook it makes; returns when it was sent."""
    from sync.sandbox import services
    from sync.sandbox.models import SandboxEntity, SandboxWebhook

    with _no_enqueue(services):
        row = SandboxEntity.objects.get(wix_id=policy["id"])
        services.entity_update(
            kind="policy", wix_id=policy["id"], changes={"revision": row.data["revision"], "name": name}
        )
    hook = SandboxWebhook.objects.order_by("-pk").first()
    assert hook is not None
    body = services.webhook_jwt(
        event_type=hook.event_type, envelope=hook.envelope, key=services.sandbox_key()
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sent = time.time()
    conn.request("POST", "/webhooks/wix/", body.encode(), {"Content-Type": "text/plain"})
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    return sent


class _no_enqueue:
    """The benchmark sends the sandbox's webhooks itself, timed (not through the worker)."""

    def __init__(self, module: object) -> None:
        self.module = module

    def __enter__(self) -> None:
        self.saved = self.module.enqueue  # type: ignore[attr-defined]
        self.module.enqueue = lambda *args, **kwargs: None  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        self.module.enqueue = self.saved  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    web_port, target_port = free_port(), free_port()
    env = portal_setup(
        port=web_port, cluster_name=f"lat{web_port}", prefix="portal-lat-", Q_WORKERS=str(args.workers)
    )
    from django.db import connection

    from sync.models import BackfillRun, ExternalSystem, OutboundWork, WixSite
    from sync.sandbox.models import SandboxEntity
    from sync.services.backfill import backfill_start

    seed(5, f"http://127.0.0.1:{target_port}")
    system = ExternalSystem.objects.get()
    system.mappings.filter(entity_type="policy").delete()
    system.mappings.create(entity_type="policy", source_path="name", target_field="name")
    processes = [
        spawn([sys.executable, str(ROOT / "benchmarks/slow_target.py"), str(target_port), "20"], env=env),
        gunicorn(env, web_port, "-w", "2", "--log-level", "warning"),
    ]
    latencies: list[float] = []
    missing = 0
    try:
        wait_for(f"http://127.0.0.1:{target_port}/stats")
        wait_for(f"http://127.0.0.1:{web_port}/healthz")
        processes.append(qcluster(env))
        run, _ = backfill_start(site=WixSite.objects.get(), trigger=BackfillRun.Trigger.COMMAND)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            run.refresh_from_db()
            open_work = OutboundWork.objects.exclude(status=OutboundWork.Status.DONE).exists()
            if run.status not in BackfillRun.ACTIVE_STATUSES and not open_work:
                break
            time.sleep(0.5)
        print(
            f"database: {connection.vendor}; backfill {run.status}; {args.workers} workers; "
            "target delay 20 ms"
        )
        policies = [e.data for e in SandboxEntity.objects.filter(kind="policy")]
        rng = random.Random(3)
        timed: list[tuple[str, float]] = []
        for n in range(args.samples):
            time.sleep(rng.uniform(1.0, 2.5))  # idle between samples
            policy = rng.choice(policies)
            if n % 2:
                _edit_and_send(web_port, policy, f"first-{n}")
                time.sleep(0.1)
            name = f"edit-{n}"
            timed.append((name, _edit_and_send(web_port, policy, name)))
        time.sleep(5)
        arrived = _target_names(target_port)
    finally:
        stop(reversed(processes))
    for name, sent in timed:
        if name in arrived:
            latencies.append(arrived[name] - sent)
        else:
            missing += 1
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

    print(
        f"edit → target, {len(latencies)} samples (half of them the second of two edits 0.1 s apart): "
        f"p50 {pct(0.5):.2f} s, p95 {pct(0.95):.2f} s, worst {pct(1.0):.2f} s"
    )
    print("check:", "every edit arrived" if not missing else f"{missing} edits MISSING")
    sys.exit(0 if not missing else 1)


if __name__ == "__main__":
    main()
