"""Recording a successful push: the entity's ID link (written once, at create) and what the
system told us on the way (links it made for other entities, facts about its records)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from sync.clients.base import ExternalError, LearnedLink, PushContext
from sync.models import ExternalLink, LinkRepair, OutboundWork, SyncLog
from sync.services.push.decide import PushDecision, PushOutcome
from sync.services.push.enqueue import push_enqueue

log = logging.getLogger(__name__)


def link_insert(work: OutboundWork, **fields: Any) -> bool:
    """Write a new link of this work's system and site; False if the entity or the record is
    already linked (the unique constraints decide, so racing pushes cannot both win)."""
    try:
        with transaction.atomic():
            ExternalLink.objects.create(system_id=work.system_id, site_id=work.site_id, **fields)
    except IntegrityError:
        return False
    return True


def _learned_store(work: OutboundWork, learned: LearnedLink) -> bool:
    """Store a link the adapter made or replaced on the way; True if it replaced this work's own."""
    now = timezone.now()
    link = ExternalLink.objects.filter(
        system_id=work.system_id, entity_type=learned.entity_type, wix_id=learned.wix_id
    ).first()
    if link is None:
        # Not written if another push linked it a moment ago (to the same record, found by its Wix id).
        link_insert(
            work,
            entity_type=learned.entity_type,
            wix_id=learned.wix_id,
            external_id=learned.external_id,
            last_payload_hash=learned.payload_hash,
            last_payload=learned.payload if learned.payload_hash else None,
            last_pushed_at=now,
        )
        return False
    if link.external_id == learned.external_id or not learned.reason:
        return False
    # The record was deleted by hand and recreated: the one case a link's id changes
    # without staff, so it leaves the same audit row as a repair.
    LinkRepair.objects.create(
        link=link,
        old_external_id=link.external_id,
        new_external_id=learned.external_id,
        reason=learned.reason,
    )
    ExternalLink.objects.filter(pk=link.pk).update(
        external_id=learned.external_id,
        deleted_at=None,
        last_payload_hash="",
        last_payload=None,
        drift={},
        last_pushed_at=now,
    )
    log.warning("%s", learned.reason)
    return learned.entity_type == work.entity_type and learned.wix_id == work.wix_id


def _facts_store(work: OutboundWork, context: PushContext) -> None:
    """What the system decided for its records (pretix: an event's currency), kept on their links."""
    for (entity_type, wix_id), facts in context.learned_facts.items():
        link = ExternalLink.objects.filter(
            system_id=work.system_id, entity_type=entity_type, wix_id=wix_id
        ).first()
        if link is not None and {**link.external_facts, **facts} != link.external_facts:
            ExternalLink.objects.filter(pk=link.pk).update(external_facts={**link.external_facts, **facts})


def push_record(work: OutboundWork, decision: PushDecision, external_id: str) -> str:
    """The links after a push that succeeded; returns its outcome."""
    assert decision.mirror is not None
    now = timezone.now()
    replaced = False
    for learned in decision.context.learned:
        replaced |= _learned_store(work, learned)
    if decision.context.sent_together and decision.digest:
        # Entities sent together (pretix: an event's policies, one list) are all up to date.
        ExternalLink.objects.filter(pk__in=decision.context.sent_together, deleted_at__isnull=True).update(
            last_payload_hash=decision.digest, last_payload=decision.payload, drift={}, last_pushed_at=now
        )
    try:
        return _own_link(work, decision, external_id, replaced, now)
    finally:
        _facts_store(work, decision.context)


def _earlier_create_uncertain(work: OutboundWork) -> bool:
    """A create for this entity and system whose outcome is unknown: cut by a worker's death,
    or a connection error or timeout after the request went out."""
    unknown = Q(status=SyncLog.Status.INTERRUPTED) | Q(
        status=SyncLog.Status.RETRYABLE, http_status__isnull=True
    )
    return SyncLog.objects.filter(
        unknown,
        system_id=work.system_id,
        entity_type=work.entity_type,
        wix_id=work.wix_id,
        action="create",
    ).exists()


def _own_link(
    work: OutboundWork, decision: PushDecision, external_id: str, replaced: bool, now: dt.datetime
) -> str:
    assert decision.mirror is not None
    if decision.action == "delete":
        assert decision.link is not None
        ExternalLink.objects.filter(pk=decision.link.pk).update(deleted_at=now, last_pushed_at=now)
        return PushOutcome.DELETED
    pushed = {
        "last_payload_hash": decision.digest,
        "last_payload": decision.payload,
        "drift": {},  # what the system has now is what was just sent
        "last_pushed_revision": decision.mirror.revision,
        "last_pushed_at": now,
    }
    if decision.action == "update":
        assert decision.link is not None
        # Only what was pushed changes; the external id is never overwritten here.
        ExternalLink.objects.filter(pk=decision.link.pk).update(**pushed)
        return PushOutcome.RECREATED if replaced else PushOutcome.UPDATED
    entity = {"entity_type": work.entity_type, "wix_id": work.wix_id}
    if _earlier_create_uncertain(work):
        # An earlier create may have reached the target (its worker died, or the answer never
        # came), so this create may have been answered by its Idempotency-Key with the record
        # that one made, holding an older payload. What the record holds is unknown: the link
        # says so, and a follow-up push sends the current payload as an update.
        pushed = {**pushed, "last_payload_hash": "", "last_payload": None}
        transaction.on_commit(
            lambda: push_enqueue(
                site=work.site,
                entity_type=work.entity_type,
                wix_ids=[work.wix_id],
                trigger=work.trigger,
                systems=[work.system],
            )
        )
    if link_insert(work, **entity, external_id=external_id, **pushed):
        return PushOutcome.CREATED
    same = ExternalLink.objects.filter(system_id=work.system_id, **entity)
    if same.filter(external_id=external_id).exists():
        # Another push linked the same record a moment ago (pretix finds records by Wix id).
        same.update(**pushed)
        return PushOutcome.UPDATED
    raise ExternalError(
        f"Created external record {external_id!r}, but that record or this Wix entity is "
        "already linked to another",
        permanent=True,
    )
