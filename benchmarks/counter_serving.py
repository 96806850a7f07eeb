"""Counter serving: requests per second of ``/counter/<slug>/`` revalidated with its ETag
(``If-None-Match`` → 304, from the cache, no database) beside a bare Django view returning a
constant JSON, on the same gunicorn in the same run; prints both and their ratio.

gunicorn serves a fresh portal (SQLite in a temporary directory unless DATABASE_URL is set;
the counter cache in files there, or Redis with REDIS_URL); load processes keep
``--connections`` keep-alive connections busy for ``--seconds`` per target, alternating the
two targets ``--rounds`` times so that warm-up and noise hit both alike. Goal: ratio ≥ 0.8.

    .venv/bin/python benchmarks/counter_serving.py [--workers 2] [--connections 8] [--seconds 5]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from procs import gunicorn, portal_setup, stop  # noqa: E402

from benchmarks.sync_throughput import free_port, wait_for  # noqa: E402

ORIGIN = "https://www.example.com"


def _client(
    port: int, path: str, headers: dict[str, str], seconds: float, expect: int, out: multiprocessing.Queue
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != expect:
            raise SystemExit(f"{path}: {response.status}, expected {expect}")
        done += 1
    conn.close()
    out.put(done)


def rate(
    port: int, path: str, headers: dict[str, str], *, connections: int, seconds: float, expect: int
) -> float:
    out: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_client, args=(port, path, headers, seconds, expect, out))
        for _ in range(connections)
    ]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 30) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--connections", type=int, default=8, help="concurrent keep-alive clients")
    parser.add_argument("--seconds", type=float, default=5.0, help="per target and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    port = free_port()
    env = portal_setup(port=port, cluster_name="counter-serving", prefix="counter-serving-")
    env["DJANGO_SETTINGS_MODULE"] = "benchmarks.counter_bench_settings"
    env["PORTAL_DEBUG"] = env["PORTAL_SANDBOX"] = "0"  # as in production (debug records every query)
    env["ALLOWED_HOSTS"] = "127.0.0.1,localhost"

    from notifications.counters.services import counter_publish
    from notifications.models import TicketCounter
    from sync.sandbox.demo import demo_id, sandbox_seed
    from sync.sandbox.services import Kind, entity_get
    from sync.services.mirrors import ticket_definition_upsert_from_wix

    site = sandbox_seed()
    vip = demo_id("td:spring-gala:vip")
    ticket_definition_upsert_from_wix(
        site=site, data=entity_get(kind=Kind.TICKET_DEFINITION, wix_id=vip)["ticketDefinition"]
    )
    counter = TicketCounter.objects.create(
        site=site, slug="demo", ticket_definition_wix_id=vip, allowed_origins=ORIGIN
    )
    etag = counter_publish(counter=counter)["etag"]

    server = gunicorn(env, port, "-w", str(args.workers), "--keep-alive", "30")
    try:
        wait_for(f"http://127.0.0.1:{port}/bench/bare")
        counter_headers = {"If-None-Match": etag, "Origin": ORIGIN}
        counter_rates, bare_rates = [], []
        for _ in range(args.rounds):
            counter_rates.append(
                rate(
                    port,
                    "/counter/demo/",
                    counter_headers,
                    connections=args.connections,
                    seconds=args.seconds,
                    expect=304,
                )
            )
            bare_rates.append(
                rate(port, "/bench/bare", {}, connections=args.connections, seconds=args.seconds, expect=200)
            )
    finally:
        stop([server])
    counter_rps, bare_rps = statistics.median(counter_rates), statistics.median(bare_rates)
    setup = f"gunicorn {args.workers} sync workers, {args.connections} keep-alive clients"
    print(f"{setup}, {args.rounds} x {args.seconds:.0f} s per target")
    rounds = ", ".join(f"{r:.0f}" for r in counter_rates)
    print(f"counter JSON (If-None-Match -> 304): {counter_rps:8.0f} req/s   (rounds: {rounds})")
    rounds = ", ".join(f"{r:.0f}" for r in bare_rates)
    print(f"bare Django view (constant JSON):    {bare_rps:8.0f} req/s   (rounds: {rounds})")
    print(f"ratio: {counter_rps / bare_rps:.2f} (goal ≥ 0.80)")


if __name__ == "__main__":
    main()
