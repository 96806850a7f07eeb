"""The console's figures: per Wix site and per external system, what waits, what failed, how late.

A handful of grouped queries for the whole page, whatever the number of rows: counts are
grouped by site or system in the database; lag percentiles are computed here from the
pushes finished in the last day (at most ``LAG_SAMPLE`` of them, newest first), because
SQLite has no percentile function.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from sync.models import (
    BackfillRun,
    BackfillStep,
    Event,
    ExternalSystem,
    OutboundWork,
    Policy,
    SyncLog,
    TicketDefinition,
    WebhookDelivery,
    WixSite,
)

LAG_SAMPLE = 50_000
CHART_HOURS = 24
FAILED_CALLS = (SyncLog.Status.RETRYABLE, SyncLog.Status.PERMANENT, SyncLog.Status.INTERRUPTED)


@dataclass(frozen=True)
class Rate:
    total: int
    failed: int

    @property
    def percent(self) -> float | None:
        return 100 * self.failed / self.total if self.total else None


@dataclass(frozen=True)
class WorkCounts:
    pending: int = 0
    in_flight: int = 0
    dead: int = 0


@dataclass(frozen=True)
class SiteFigures:
    site: WixSite
    events: int
    policies: int
    ticket_definitions: int
    work: WorkCounts
    webhooks_day: Rate
    newest_webhook: WebhookDelivery | None
    last_backfill: BackfillRun | None


@dataclass(frozen=True)
class ChartBar:
    hour: dt.datetime
    pushes: int
    p95: float | None  # seconds
    height: float  # 0..1 of the tallest bar

    @property
    def pixels(self) -> int:
        """Bar height in the console's 28 px chart (an hour with pushes shows at least 1 px)."""
        return max(1, round(self.height * 27)) if self.pushes else 0


@dataclass(frozen=True)
class SystemFigures:
    system: ExternalSystem
    work: WorkCounts
    calls_hour: Rate
    pushes_hour: int
    lag_p50: float | None
    lag_p95: float | None
    chart: list[ChartBar] = field(default_factory=list)


@dataclass(frozen=True)
class BackfillProgress:
    run: BackfillRun
    events_done: int
    events_total: int
    by_type: dict[str, int]  # entities read so far, per type (policies, ticket definitions)
    failed_steps: int

    @property
    def percent(self) -> int:
        return round(100 * self.events_done / self.events_total) if self.events_total else 0


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None for none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _work_counts(by: str) -> dict[int, WorkCounts]:
    rows = (
        OutboundWork.objects.filter(
            status__in=[OutboundWork.Status.PENDING, OutboundWork.Status.IN_FLIGHT, OutboundWork.Status.DEAD]
        )
        .values(by, "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for row in rows:
        counts[row[by]][row["status"]] = row["n"]
    return {
        key: WorkCounts(pending=c.get("pending", 0), in_flight=c.get("in_flight", 0), dead=c.get("dead", 0))
        for key, c in counts.items()
    }


def _live_per_site(model: type[Event] | type[Policy] | type[TicketDefinition]) -> dict[int, int]:
    rows = model.objects.filter(deleted_at__isnull=True).values("site").annotate(n=Count("id")).order_by()
    return {row["site"]: row["n"] for row in rows}


def site_figures(*, now: dt.datetime | None = None) -> list[SiteFigures]:
    now = now or timezone.now()
    sites = list(WixSite.objects.filter(is_active=True).order_by("name"))
    events, policies, tickets = (_live_per_site(m) for m in (Event, Policy, TicketDefinition))
    work = _work_counts("site")
    day: dict[Any, Counter[str]] = defaultdict(Counter)
    for row in (
        WebhookDelivery.objects.filter(received_at__gte=now - dt.timedelta(days=1), site__isnull=False)
        .values("site", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        day[row["site"]][row["status"]] += row["n"]
    figures = []
    for site in sites:
        newest = (
            WebhookDelivery.objects.filter(site=site)
            .only("received_at", "event_type", "status")
            .order_by("-received_at")
            .first()
        )
        last_run = BackfillRun.objects.filter(site=site).order_by("-created_at").first()
        counts = day[site.pk]
        figures.append(
            SiteFigures(
                site=site,
                events=events.get(site.pk, 0),
                policies=policies.get(site.pk, 0),
                ticket_definitions=tickets.get(site.pk, 0),
                work=work.get(site.pk, WorkCounts()),
                webhooks_day=Rate(sum(counts.values()), counts[WebhookDelivery.Status.FAILED]),
                newest_webhook=newest,
                last_backfill=last_run,
            )
        )
    return figures


def _lags(since: dt.datetime) -> dict[int, list[tuple[dt.datetime, float]]]:
    """Per system: (finished at, seconds from the change on Wix to the push), newest first."""
    rows = (
        OutboundWork.objects.filter(
            status=OutboundWork.Status.DONE, finished_at__gte=since, changed_at__isnull=False
        )
        .order_by("-finished_at")
        .values_list("system_id", "finished_at", "changed_at")[:LAG_SAMPLE]
    )
    lags: dict[int, list[tuple[dt.datetime, float]]] = defaultdict(list)
    for system_id, finished, changed in rows:
        if finished is not None and changed is not None:  # both filtered so; the types cannot know
            lags[system_id].append((finished, max(0.0, (finished - changed).total_seconds())))
    return lags


def _chart(lags: Iterable[tuple[dt.datetime, float]], now: dt.datetime) -> list[ChartBar]:
    start = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=CHART_HOURS - 1)
    buckets: list[list[float]] = [[] for _ in range(CHART_HOURS)]
    for finished, lag in lags:
        index = int((finished - start).total_seconds() // 3600)
        if 0 <= index < CHART_HOURS:
            buckets[index].append(lag)
    p95s = [percentile(sorted(b), 0.95) for b in buckets]
    top = max((p for p in p95s if p is not None), default=0.0)
    return [
        ChartBar(
            hour=start + dt.timedelta(hours=n),
            pushes=len(buckets[n]),
            p95=p95s[n],
            height=(p95s[n] or 0.0) / top if top else 0.0,
        )
        for n in range(CHART_HOURS)
    ]


def system_figures(*, now: dt.datetime | None = None) -> list[SystemFigures]:
    now = now or timezone.now()
    hour_ago = now - dt.timedelta(hours=1)
    systems = list(ExternalSystem.objects.order_by("-is_active", "name"))
    work = _work_counts("system")
    calls: dict[int, Counter[str]] = defaultdict(Counter)
    for row in (
        SyncLog.objects.filter(created_at__gte=hour_ago)
        .values("system", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        calls[row["system"]][row["status"]] += row["n"]
    pushed = dict(
        OutboundWork.objects.filter(status=OutboundWork.Status.DONE, finished_at__gte=hour_ago)
        .values("system")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("system", "n")
    )
    lags = _lags(now - dt.timedelta(hours=CHART_HOURS))
    figures = []
    for system in systems:
        mine = lags.get(system.pk, [])
        last_hour = sorted(lag for finished, lag in mine if finished >= hour_ago)
        counted = calls[system.pk]
        figures.append(
            SystemFigures(
                system=system,
                work=work.get(system.pk, WorkCounts()),
                calls_hour=Rate(
                    sum(n for status, n in counted.items() if status != SyncLog.Status.SENDING),
                    sum(counted[status] for status in FAILED_CALLS),
                ),
                pushes_hour=pushed.get(system.pk, 0),
                lag_p50=percentile(last_hour, 0.5),
                lag_p95=percentile(last_hour, 0.95),
                chart=_chart(mine, now),
            )
        )
    return figures


def backfills_running() -> list[BackfillProgress]:
    runs = list(
        BackfillRun.objects.filter(status__in=BackfillRun.ACTIVE_STATUSES)
        .select_related("site", "event", "started_by")
        .order_by("created_at")
    )
    if not runs:
        return []
    ended = (BackfillStep.Status.DONE, BackfillStep.Status.FAILED)
    totals = {
        row["run"]: row
        for row in BackfillStep.objects.filter(run__in=runs)
        .values("run")
        .annotate(
            total=Count("id"),
            ended=Count("id", filter=Q(status__in=ended)),
            failed=Count("id", filter=Q(status=BackfillStep.Status.FAILED)),
        )
        .order_by()
    }
    by_type: dict[int, Counter[str]] = defaultdict(Counter)
    for run_id, fetched in (
        BackfillStep.objects.filter(run__in=runs, status=BackfillStep.Status.DONE)
        .exclude(fetched_by_type={})
        .values_list("run", "fetched_by_type")
    ):
        by_type[run_id].update(fetched)
    progress = []
    for run in runs:
        row: dict[str, Any] = dict(totals.get(run.pk, {}))
        progress.append(
            BackfillProgress(
                run=run,
                events_done=row.get("ended", 0),
                events_total=row.get("total", 0),
                by_type=dict(by_type[run.pk]),
                failed_steps=row.get("failed", 0),
            )
        )
    return progress


__all__ = [
    "BackfillProgress",
    "ChartBar",
    "Rate",
    "SiteFigures",
    "SystemFigures",
    "WorkCounts",
    "backfills_running",
    "percentile",
    "site_figures",
    "system_figures",
]
