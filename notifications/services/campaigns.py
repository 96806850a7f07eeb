"""Which sale-start campaigns exist: planned from the ticket definition mirrors.

A campaign per event and sale start lists the definitions whose sale starts then. Planning
an event is idempotent and quick (a few queries), so it runs from the ``mirror_changed``
signal (a backfill, a webhook, a ``sale_period_updated`` refresh) and from a periodic sweep
that catches what a signal missed. Only open campaigns (scheduled, blocked, missed) are
changed: a moved start moves its campaign, a definition deleted, hidden or whose sale ended
leaves it, and a campaign left with no definition is cancelled. A campaign whose emails went
out is never touched again.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.models import SaleStartCampaign
from portal import jobs
from portal.audit import audit
from sync.models import Event, TicketDefinition, WixSite

Status = SaleStartCampaign.Status
RELEASE_TASK = "notifications.tasks.campaigns_drain_task"
STAFF = "staff: "  # how a cancel by staff is told from the planner's own


def _live_event(event: Event | None) -> bool:
    return (
        event is not None
        and not event.is_deleted
        and event.status
        not in (
            Event.Status.ENDED,
            Event.Status.CANCELED,
        )
    )


def _sendable(td: TicketDefinition, now: dt.datetime) -> bool:
    """A definition whose sale start may still be announced."""
    return (
        td.deleted_at is None
        and not td.hidden
        and td.sale_start is not None
        and td.sale_status != TicketDefinition.SaleStatus.ENDED
        and (td.sale_end is None or td.sale_end > now)
    )


def campaigns_plan(*, site: WixSite, event_wix_id: str, now: dt.datetime | None = None) -> dict[str, int]:
    """Bring an event's open campaigns in line with its definitions; returns what changed."""
    now = now or timezone.now()
    counts: dict[str, int] = defaultdict(int)
    with transaction.atomic():
        event = Event.objects.filter(site=site, wix_id=event_wix_id).first()
        definitions = list(TicketDefinition.objects.filter(site=site, event_wix_id=event_wix_id))
        sendable = {td.wix_id: td for td in definitions if _sendable(td, now)} if _live_event(event) else {}
        future: dict[dt.datetime, list[TicketDefinition]] = defaultdict(list)
        for td in sendable.values():
            if td.sale_start is not None and td.sale_start > now:
                future[td.sale_start].append(td)
        campaigns = list(
            SaleStartCampaign.objects.select_for_update()
            .filter(site=site, event_wix_id=event_wix_id)
            .exclude(status=Status.CANCELLED)
            .order_by("sale_start", "pk")
        )
        taken = {c.sale_start for c in campaigns}
        # A start staff cancelled stays cancelled: the planner does not bring it back.
        taken |= set(
            SaleStartCampaign.objects.filter(
                site=site,
                event_wix_id=event_wix_id,
                status=Status.CANCELLED,
                cancelled_reason__startswith=STAFF,
            ).values_list("sale_start", flat=True)
        )
        for campaign in campaigns:
            if campaign.status not in SaleStartCampaign.OPEN:
                continue
            if campaign.sale_start in future:
                _update(campaign, future[campaign.sale_start], event, counts)
                continue
            # Its definitions moved to a start no campaign holds yet: the campaign moves with them.
            moved_to = next(
                (
                    start
                    for start, tds in sorted(future.items())
                    if start not in taken
                    and {td.wix_id for td in tds} & set(campaign.ticket_definition_wix_ids)
                ),
                None,
            )
            if moved_to is not None and campaign.status == Status.SCHEDULED:
                taken.discard(campaign.sale_start)
                taken.add(moved_to)
                campaign.sale_start = campaign.not_before = moved_to
                _update(campaign, future[moved_to], event, counts, key="rescheduled")
                continue
            still = [
                sendable[i]
                for i in campaign.ticket_definition_wix_ids
                if i in sendable and sendable[i].sale_start == campaign.sale_start
            ]
            if campaign.sale_start <= now and still:
                _update(campaign, still, event, counts)  # due now or overdue: left to the drain
            else:
                _cancel(campaign, "its ticket definitions were deleted, hidden, moved or their sale ended")
                taken.discard(campaign.sale_start)
                counts["cancelled"] += 1
        for start, tds in sorted(future.items()):
            if start in taken:
                continue
            SaleStartCampaign.objects.create(
                site=site,
                event_wix_id=event_wix_id,
                event=event,
                sale_start=start,
                not_before=start,
                sale_end=_earliest_end(tds),
                ticket_definition_wix_ids=sorted(td.wix_id for td in tds),
                status=Status.SCHEDULED,
            )
            counts["created"] += 1
    return dict(counts)


def _earliest_end(tds: list[TicketDefinition]) -> dt.datetime | None:
    ends = [td.sale_end for td in tds if td.sale_end is not None]
    return min(ends) if ends else None


def _update(
    campaign: SaleStartCampaign,
    tds: list[TicketDefinition],
    event: Event | None,
    counts: dict[str, int],
    key: str = "updated",
) -> None:
    ids = sorted(td.wix_id for td in tds)
    end = _earliest_end(tds)
    if (
        key == "updated"
        and ids == campaign.ticket_definition_wix_ids
        and end == campaign.sale_end
        and campaign.event_id == (event.pk if event else None)
    ):
        return
    campaign.ticket_definition_wix_ids, campaign.sale_end, campaign.event = ids, end, event
    campaign.save()
    counts[key] += 1


def _cancel(campaign: SaleStartCampaign, reason: str) -> None:
    campaign.status = Status.CANCELLED
    campaign.cancelled_reason = reason[:200]
    campaign.claimed_at = None
    campaign.save()


def campaigns_on_mirror_changed(
    sender: Any, *, site: WixSite, entity_type: str, mirror: Any, **_: Any
) -> None:
    """Receiver of ``sync.services.mirrors.mirror_changed``: re-plan the event concerned."""
    if entity_type == "ticket_definition":
        campaigns_plan(site=site, event_wix_id=mirror.event_wix_id)
    elif entity_type == "event":
        campaigns_plan(site=site, event_wix_id=mirror.wix_id)


def campaigns_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Scheduled: re-plan every event with a sale still to start or a campaign still open."""
    now = now or timezone.now()
    pairs = set(
        TicketDefinition.objects.filter(sale_start__gt=now, deleted_at__isnull=True).values_list(
            "site_id", "event_wix_id"
        )
    ) | set(
        SaleStartCampaign.objects.filter(status__in=SaleStartCampaign.OPEN).values_list(
            "site_id", "event_wix_id"
        )
    )
    sites = {s.pk: s for s in WixSite.objects.filter(pk__in={p[0] for p in pairs})}
    total: dict[str, int] = defaultdict(int)
    for site_id, event_wix_id in sorted(pairs):
        for key, n in campaigns_plan(site=sites[site_id], event_wix_id=event_wix_id, now=now).items():
            total[key] += n
    return dict(total)


# --- staff decisions ----------------------------------------------------------------------
def campaign_send_now(*, campaign_ids: list[int], by: Any = None) -> int:
    """Send these campaigns at once: before their time, or after a block or a missed start."""
    reason = "staff: send now"
    ready = list(
        SaleStartCampaign.objects.filter(pk__in=campaign_ids, status=Status.SCHEDULED).values_list(
            "pk", flat=True
        )
    )
    user = by if getattr(by, "is_authenticated", False) else None
    SaleStartCampaign.objects.filter(pk__in=ready, status=Status.SCHEDULED).update(
        not_before=None, retry_reason=reason, retried_by=user, updated_at=timezone.now()
    )
    again = ready + jobs.retry(SaleStartCampaign, campaign_ids, reason=reason, by=by)
    if again:
        jobs.wake(RELEASE_TASK)
        audit(by, SaleStartCampaign.objects.filter(pk__in=again), "Send now.")
    return len(again)


def campaign_cancel(*, campaign_ids: list[int], by: Any = None, reason: str = "cancelled by staff") -> int:
    rows = SaleStartCampaign.objects.filter(pk__in=campaign_ids, status__in=SaleStartCampaign.OPEN)
    cancelled = [c.pk for c in rows]
    rows.update(status=Status.CANCELLED, cancelled_reason=(STAFF + reason)[:200], updated_at=timezone.now())
    audit(by, SaleStartCampaign.objects.filter(pk__in=cancelled), f"Cancelled ({reason}).")
    return len(cancelled)


def campaigns_upcoming() -> Any:
    return SaleStartCampaign.objects.filter(
        Q(status__in=SaleStartCampaign.OPEN) | Q(status=Status.RESOLVING)
    ).select_related("site", "event")
