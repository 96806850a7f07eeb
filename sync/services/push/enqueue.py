"""Queueing pushes: a pending ``OutboundWork`` row per entity and system, then a wake-up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Q

from portal.jobs import wake
from sync.models import ExternalSystem, OutboundWork, WixSite
from sync.services.push.decide import PushCache, system_handles

DRAIN_TASK = "sync.tasks.push_drain_task"


def push_enqueue(
    *,
    site: WixSite,
    entity_type: str,
    wix_ids: Iterable[str],
    trigger: str,
    systems: Iterable[ExternalSystem] | None = None,
    drains: int = 1,
    changed_at: dt.datetime | None = None,
) -> int:
    """Create (or join) pending work per entity and active system; wake drains on commit.

    A pending row pushes the newest mirror state when it runs, so a second change of an
    entity whose push has not started yet joins that row (the "one pending per entity"
    constraint makes this safe against racing writers). ``changed_at`` is when the change
    happened on Wix; a joined row keeps the earliest change it carries.
    """
    systems = list(systems) if systems is not None else list(ExternalSystem.objects.filter(is_active=True))
    cache = PushCache()
    systems = [s for s in systems if system_handles(s, entity_type, cache)]
    ids = list(dict.fromkeys(wix_ids))
    created = 0
    for system in systems:
        pending = OutboundWork.objects.filter(
            system=system, entity_type=entity_type, wix_id__in=ids, status=OutboundWork.Status.PENDING
        )
        existing = set(pending.values_list("wix_id", flat=True))
        if changed_at is not None and existing:
            pending.filter(Q(changed_at__isnull=True) | Q(changed_at__gt=changed_at)).update(
                changed_at=changed_at
            )
        for wix_id in ids:
            if wix_id in existing:
                continue
            try:
                with transaction.atomic():
                    OutboundWork.objects.create(
                        system=system,
                        site=site,
                        entity_type=entity_type,
                        wix_id=wix_id,
                        trigger=trigger,
                        changed_at=changed_at,
                    )
                created += 1
            except IntegrityError:
                pass  # created by someone else a moment ago: join it
    if created:
        wake(DRAIN_TASK, drains=min(drains, created))
    return created
