"""Sale-start emails: 10,000 opted-in subscribers to a local SMTP sink, against plain smtplib.

    .venv/bin/python benchmarks/notifications_send.py [--subscribers 10000] [--workers 1]

A fresh portal (SQLite in a temporary directory, or DATABASE_URL/REDIS_URL) with the Wix
sandbox served by gunicorn (Wix's consent check: Email Subscriptions queried by ``email $in``
in batches), N subscribers on the local list, all SUBSCRIBED on the sandbox "Wix", and an
SMTP sink (aiosmtpd, its own process) that logs each Message-ID it accepts (and, apart, each
whose end of data reached it).

1. **Portal**: the campaign is released (recipients resolved through Wix, ledger written),
   then ``--workers`` worker processes drain it (each over one SMTP connection). Prints
   emails per second, the total time, and each worker's peak memory.
2. **Baseline**: the same N messages, prebuilt (rendered by the portal, to bytes), sent by a
   plain ``smtplib`` loop over one connection to the same sink, once before the portal's run
   and once after (the machine's pace drifts). Prints the ratio to their mean.
3. **Crash**: a second campaign of N; its worker is SIGKILLed half-way (``--crashes K``: K
   workers, each killed at the next of K points spread over the campaign) and its claimed rows
   released (the last it handed to the server becomes ``uncertain``: never resent by itself;
   those handed before it were sent; the others are sent again), a worker restarted. Counts
   duplicates and missing at the sink, which uncertain rows had reached it, and of those that
   had not, which had ended at the sink nonetheless (aiosmtpd drops a message whose end it had
   not read yet when the connection closed; Postfix would queue it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import re
import resource
import signal
import smtplib
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import ROOT, gunicorn, portal_setup, spawn, stop
from sync_throughput import free_port, wait_for

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.M | re.I)


# --- the SMTP sink (its own process) ------------------------------------------------------
def sink_main(port: int, log: Path) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    out, ended = log.open("ab", buffering=0), ended_log(log).open("ab", buffering=0)

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            found = MESSAGE_ID.search(envelope.content)  # type: ignore[attr-defined]
            out.write((found.group(1) if found else b"<none>") + b"\n")
            return "250 OK"

    class Session(SMTP):
        """aiosmtpd's session, noting each message whose end reached the sink as it arrives
        (before the session reads it). aiosmtpd drops such a message when the client's
        connection closes before it read it (it cancels the session at EOF); Postfix or Exim,
        reading in order, would queue it. The crash report tells the two apart."""

        wire = b""

        def data_received(self, data: bytes) -> None:
            self.wire += data
            while (end := self.wire.find(b"\r\n.\r\n")) >= 0:
                found = MESSAGE_ID.search(self.wire, 0, end)
                if found:
                    ended.write(found.group(1) + b"\n")
                self.wire = self.wire[end + 5 :]
            super().data_received(data)

    class Sink(Controller):
        def factory(self) -> SMTP:
            return Session(self.handler)

    controller = Sink(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


def ended_log(log: Path) -> Path:
    return log.with_name(log.stem + "-ended.log")


def sink_ids(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


# --- a worker (its own process) -----------------------------------------------------------
def worker_main() -> None:
    import django

    django.setup()
    from notifications.services.sending import notifications_drain

    profile_to = os.environ.get("BENCH_PROFILE")
    if profile_to:  # where the time goes: BENCH_PROFILE=/tmp/send.prof, then python -m pstats
        import cProfile

        profiler = cProfile.Profile()
        sent = profiler.runcall(notifications_drain, budget_seconds=3600)
        profiler.dump_stats(profile_to)
    else:
        sent = notifications_drain(budget_seconds=3600)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"sent": sent, "peak_mb": round(peak_kb(usage) / 1024, 1), "cpu": cpu}), flush=True)


def peak_kb(usage: resource.struct_rusage) -> float:
    """This process's own peak: Linux's VmHWM. (ru_maxrss keeps, across exec, the peak of the
    parent it was forked from: the benchmark's, holding the baseline's prebuilt messages.)"""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    return float(usage.ru_maxrss)


def workers(env: dict[str, str], n: int) -> list[subprocess.Popen[bytes]]:
    return [
        spawn([sys.executable, __file__, "--worker"], env=env, cwd=ROOT, stdout=subprocess.PIPE)
        for _ in range(n)
    ]


# --- the portal side ----------------------------------------------------------------------
def seed(n: int, portal_url: str) -> None:
    from notifications.models import LocalSubscriber
    from sync.models import WixSite
    from sync.sandbox.demo import sandbox_site_ensure
    from sync.sandbox.models import SandboxEmailSubscription

    site = sandbox_site_ensure()
    WixSite.objects.filter(pk=site.pk).update(api_base_url=f"{portal_url}/sandbox/wix")
    emails = [f"subscriber{i:05d}@example.com" for i in range(n)]
    LocalSubscriber.objects.bulk_create(
        [LocalSubscriber(site=site, email=e, name=f"S {i}", all_events=True) for i, e in enumerate(emails)],
        batch_size=1000,
    )
    SandboxEmailSubscription.objects.bulk_create(
        [
            SandboxEmailSubscription(wix_id=f"sub-{i}", email=e, subscription_status="SUBSCRIBED")
            for i, e in enumerate(emails)
        ],
        batch_size=1000,
    )


def campaign_create(key: str) -> int:
    """An event with one ticket definition whose sale starts now (the mirrors as Wix sent them)."""
    from django.utils import timezone

    from notifications.models import SaleStartCampaign
    from sync.models import WixSite
    from sync.services.mirrors import event_upsert_from_wix, ticket_definition_upsert_from_wix

    site = WixSite.objects.get()
    now = timezone.now()
    event_id, td_id = f"bench-event-{key}", f"bench-td-{key}"
    stamp = now.isoformat().replace("+00:00", "Z")
    event_upsert_from_wix(
        site=site,
        data={
            "id": event_id,
            "title": f"Benchmark {key}",
            "slug": f"benchmark-{key}",
            "status": "UPCOMING",
            "dateAndTimeSettings": {"startDate": stamp, "timeZoneId": "Europe/Lisbon"},
            "location": {"name": "Loopback Hall"},
            "updatedDate": stamp,
        },
    )
    start = now + dt.timedelta(seconds=1)
    ticket_definition_upsert_from_wix(
        site=site,
        data={
            "id": td_id,
            "eventId": event_id,
            "revision": "1",
            "name": "General",
            "pricingMethod": {"fixedPrice": {"value": "10.00", "currency": "EUR"}},
            "feeType": "FEE_INCLUDED",
            "salePeriod": {
                "startDate": start.isoformat(),
                "endDate": (now + dt.timedelta(days=9)).isoformat(),
            },
            "updatedDate": stamp,
        },
    )
    campaign = SaleStartCampaign.objects.get(event_wix_id=event_id)
    time.sleep(max(0.0, (start - timezone.now()).total_seconds()) + 0.05)
    return campaign.pk


def release(campaign_id: int) -> float:
    from notifications.services.sending import campaigns_drain

    started = time.perf_counter()
    assert campaigns_drain(budget_seconds=120) == 1
    from notifications.models import SaleStartCampaign

    campaign = SaleStartCampaign.objects.get(pk=campaign_id)
    assert campaign.status == "sending", (campaign.status, campaign.last_error)
    return time.perf_counter() - started


def wait_all(procs: list[subprocess.Popen[bytes]]) -> list[dict]:
    reports = []
    for p in procs:
        out, _ = p.communicate()
        reports += [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    return reports


def campaign_ids(campaign_id: int) -> dict[str, int]:
    from notifications.models import Notification
    from notifications.services.emails import message_id_for

    return {
        message_id_for(pk): pk
        for pk in Notification.objects.filter(campaign_id=campaign_id).values_list("pk", flat=True)
    }


def baseline(n_ids: dict[str, int], port: int, tag: str) -> float:
    """The same messages, prebuilt to bytes by the portal, sent by a plain smtplib loop."""
    from notifications.models import Notification
    from notifications.services.emails import campaign_context, message_build, templates_for_site

    rows = list(
        Notification.objects.filter(pk__in=n_ids.values()).select_related("campaign__site", "campaign__event")
    )
    campaign = rows[0].campaign
    templates, context = templates_for_site(campaign.site), campaign_context(campaign)
    prebuilt = []
    for row in rows:
        message = message_build(
            campaign=campaign,
            templates=templates,
            context=context,
            email=row.email,
            name=row.name,
            message_id=f"<baseline-{tag}.{row.pk}@bench>",
        )
        prebuilt.append((message.from_email, [row.email], message.message().as_bytes(linesep="\r\n")))
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for sender, to, data in prebuilt:
            smtp.sendmail(sender, to, data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--crashes", type=int, default=1, help="workers SIGKILLed in the crash run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sink", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        return sink_main(int(args.sink[0]), Path(args.sink[1]))
    if args.worker:
        return worker_main()

    web_port, smtp_port = free_port(), free_port()
    env = portal_setup(
        port=web_port,
        cluster_name="bench-notify",
        prefix="bench-notify-",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_port),
        NOTIFICATIONS_GRACE_MINUTES="60",
    )
    log = Path(env["PORTAL_DATA_DIR"]) / "sink.log"
    worker_env = {**env, "PORTAL_DEBUG": "0", "PORTAL_SANDBOX": "0"}
    sink = spawn([sys.executable, __file__, "--sink", str(smtp_port), str(log)], env=env, cwd=ROOT)
    web = gunicorn(env, web_port, "-w", "2")
    running = [sink, web]
    try:
        wait_for(f"http://127.0.0.1:{web_port}/healthz")
        seed(args.subscribers, env["PORTAL_BASE_URL"])
        n = args.subscribers

        # 1. the portal, between two runs of the baseline (the machine's pace drifts: the ratio is
        # taken against their mean)
        first = campaign_create("a")
        released = release(first)
        ids = campaign_ids(first)
        plain_before = baseline(ids, smtp_port, "before")
        started = time.perf_counter()
        reports = wait_all(workers(worker_env, args.workers))
        sending = time.perf_counter() - started
        seen = Counter(i for i in sink_ids(log) if i in ids)
        assert len(seen) == n and max(seen.values()) == 1, (len(seen), max(seen.values(), default=0))
        portal_rate = n / sending
        cpu = sum(r["cpu"] for r in reports) / n * 1e6
        print(
            f"portal:   {n} emails in {sending:.1f} s = {portal_rate:.0f}/s with {args.workers} worker(s) "
            f"(+ {released:.1f} s to resolve {n} recipients through Wix and write the ledger); "
            f"peak memory per worker {max(r['peak_mb'] for r in reports):.0f} MB; "
            f"worker CPU {cpu:.0f} µs an email (Django's start-up included)"
        )

        # 2. the baseline
        plain_after = baseline(ids, smtp_port, "after")
        plain_rate = 2 * n / (plain_before + plain_after)
        print(
            f"smtplib:  {n} prebuilt messages in {plain_before:.1f} s before and {plain_after:.1f} s after "
            f"the portal = {plain_rate:.0f}/s over one connection"
        )
        print(f"ratio:    {portal_rate / plain_rate:.0%} of the plain loop (sending only; aim: at least 50%)")

        # 3. a worker SIGKILLed half-way, then restarted
        from notifications.models import Notification
        from notifications.services.emails import message_id_for
        from notifications.services.sending import notifications_release_stuck

        second = campaign_create("b")
        release(second)
        ids2 = campaign_ids(second)

        released, kills = 0, []
        for k in range(1, args.crashes + 1):  # kill points spread over the campaign
            # Anywhere in a batch of rows (a round number would kill at the batch's end each time).
            at = n * k // (args.crashes + 1) + random.randrange(50)
            (victim,) = workers(worker_env, 1)
            while sum(1 for i in sink_ids(log) if i in ids2) < at:
                time.sleep(0.02)
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
            kills.append(sum(1 for i in sink_ids(log) if i in ids2))
            released += notifications_release_stuck(older_than=dt.timedelta(0))
        wait_all(workers(worker_env, 1))
        seen2 = Counter(i for i in sink_ids(log) if i in ids2)
        duplicates = sum(c - 1 for c in seen2.values() if c > 1)
        missing = [pk for mid, pk in ids2.items() if mid not in seen2]
        uncertain = list(
            Notification.objects.filter(campaign_id=second, status="uncertain").values_list("pk", flat=True)
        )
        delivered = [pk for pk in uncertain if message_id_for(pk) in seen2]
        print(
            f"crash:    {args.crashes} worker(s) SIGKILLed (at {kills} of {n} received) and replaced; "
            f"{released} claimed row(s) released: "
            f"{len(uncertain)} uncertain (handed to the server, not marked: never resent by itself; "
            f"{len(delivered)} of them had reached the sink), the rest found sent or sent again; "
            "after the last "
            f"restart {len(seen2)} distinct received, {duplicates} duplicate(s), {len(missing)} missing"
        )
        if missing:
            on_wire = set(sink_ids(ended_log(log)))
            ended = [pk for pk in missing if message_id_for(pk) in on_wire]
            print(
                f"          missing: {missing}: uncertain rows the sink had not taken when their "
                f"worker died (staff send them again); {len(ended)} of them had ended at the sink, "
                "which dropped them unread as the connection closed (aiosmtpd cancels its session "
                "at EOF; Postfix or Exim would have queued them), "
                f"{len(missing) - len(ended)} never ended (the worker died between the hand-over and "
                "the end of the data)"
            )
    finally:
        stop(running)


if __name__ == "__main__":
    main()
