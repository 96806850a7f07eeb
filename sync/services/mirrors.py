"""Upsert Wix entities into their mirrors, guarded by revision.

Rules, shared by backfill, webhooks and resync:
- An older revision never overwrites a newer one (``STALE``). Entities without a
  revision (events) are ordered by ``updatedDate``.
- The same revision with different content (sales details move without a revision bump)
  is an update; identical content is ``UNCHANGED``, so a second backfill changes nothing.
- A tombstone is final: Wix ids are never reused, so a late create or update of a deleted
  entity is ``TOMBSTONED`` and ignored. A deletion of an entity never seen leaves a
  tombstone too, so that the late create that may follow cannot bring it back.
- Each entity is written in its own transaction, so nothing is left half-written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, models, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from sync.models import Event, MirrorChange, MirrorModel, Policy, TicketDefinition, WixSite

# Sent after a mirror was created, updated or tombstoned (never for unchanged, stale or
# tombstoned-ignored writes), once its transaction has ended, with ``site``, ``entity_type``
# (an ``EntityType`` value), ``mirror`` and ``outcome``. Other apps (notifications: campaigns
# and counters) react here instead of sync importing them. Receivers must be quick and
# idempotent (schedule a job, do not call out): a receiver that raises fails the write's caller,
# which retries; the mirror is already written, so the retry sees "unchanged" and sends nothing,
# which is why apps also keep a periodic sweep over the mirrors.
mirror_changed = Signal()


def _announce(result: UpsertResult) -> UpsertResult:
    if result.changed:
        entity_type = {Event: "event", Policy: "policy", TicketDefinition: "ticket_definition"}[
            type(result.mirror)
        ]
        mirror_changed.send(
            sender=type(result.mirror),
            site=result.mirror.site,
            entity_type=entity_type,
            mirror=result.mirror,
            outcome=result.outcome,
        )
    return result


class MirrorDataError(ValueError):
    """Wix sent an entity that lacks a field we need, or has it in the wrong type."""


class UpsertOutcome(models.TextChoices):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"
    TOMBSTONED = "tombstoned"
    DELETED = "deleted"


@dataclass(frozen=True)
class UpsertResult:
    outcome: UpsertOutcome
    mirror: MirrorModel

    @property
    def changed(self) -> bool:
        return self.outcome in (UpsertOutcome.CREATED, UpsertOutcome.UPDATED, UpsertOutcome.DELETED)


# --- field readers: each names the field it could not read ------------------------------
def _get(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _required_str(data: dict[str, Any], path: str, entity: str) -> str:
    value = _get(data, path)
    if not isinstance(value, str) or not value:
        raise MirrorDataError(f"{entity}.{path} is missing or not a non-empty string (got {value!r})")
    return value


def _optional_str(data: dict[str, Any], path: str, entity: str, max_length: int = 200) -> str:
    value = _get(data, path)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MirrorDataError(f"{entity}.{path} is not a string (got {value!r})")
    return value[:max_length]


def _revision(data: dict[str, Any], entity: str, *, required: bool) -> int | None:
    value = data.get("revision")
    if value is None and not required:
        return None
    # Wix sends int64 as a JSON string ("4"); accept a number too.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MirrorDataError(f"{entity}.revision is missing or not an integer string (got {value!r})")
    try:
        revision = int(value)
    except ValueError as exc:
        raise MirrorDataError(f"{entity}.revision is not an integer string (got {value!r})") from exc
    if revision < 0:
        raise MirrorDataError(f"{entity}.revision is negative ({value!r})")
    return revision


def _datetime(data: dict[str, Any], path: str, entity: str) -> dt.datetime | None:
    value = _get(data, path)
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise MirrorDataError(f"{entity}.{path} is not an ISO-8601 date-time (got {value!r})")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, dt.UTC)
    return parsed


def _int(data: dict[str, Any], path: str, entity: str) -> int | None:
    value = _get(data, path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MirrorDataError(f"{entity}.{path} is not an integer (got {value!r})")
    return value


def _bool(data: dict[str, Any], path: str, entity: str) -> bool:
    value = _get(data, path)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MirrorDataError(f"{entity}.{path} is not a boolean (got {value!r})")
    return value


def money_value(money: Any, path: str, entity: str = "ticketDefinition") -> tuple[Decimal, str]:
    """Wix Money: ``{"value": "25.00", "currency": "EUR"}``; legacy orders use ``amount``."""
    if not isinstance(money, dict):
        raise MirrorDataError(f"{entity}.{path} is not a Money object (got {money!r})")
    raw = money.get("value", money.get("amount"))
    if not isinstance(raw, str):
        raise MirrorDataError(f"{entity}.{path}.value is not a decimal string (got {raw!r})")
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise MirrorDataError(f"{entity}.{path}.value is not a decimal string (got {raw!r})") from exc
    if not value.is_finite():
        raise MirrorDataError(f"{entity}.{path}.value is not a finite number (got {raw!r})")
    currency = money.get("currency") or ""
    if not isinstance(currency, str) or len(currency) > 3:
        raise MirrorDataError(f"{entity}.{path}.currency is not an ISO-4217 code (got {currency!r})")
    return value, currency


# --- per-type column extraction ------------------------------------------------------
def _event_columns(data: dict[str, Any]) -> dict[str, Any]:
    status = _optional_str(data, "status", "event", 32)
    return {
        "title": _optional_str(data, "title", "event"),
        "slug": _optional_str(data, "slug", "event"),
        "status": status if status in Event.Status.values else Event.Status.UNKNOWN if status else "",
        "start_date": _datetime(data, "dateAndTimeSettings.startDate", "event"),
        "end_date": _datetime(data, "dateAndTimeSettings.endDate", "event"),
    }


def _policy_columns(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_wix_id": _required_str(data, "eventId", "policy"),
        "name": _optional_str(data, "name", "policy"),
    }


def _ticket_definition_columns(data: dict[str, Any]) -> dict[str, Any]:
    entity = "ticketDefinition"
    pricing = data.get("pricingMethod")
    if not isinstance(pricing, dict):
        raise MirrorDataError(f"{entity}.pricingMethod is missing or not an object")
    if pricing.get("fixedPrice") is not None:
        method = TicketDefinition.PricingMethod.FIXED
        price, currency = money_value(pricing["fixedPrice"], "pricingMethod.fixedPrice")
    elif pricing.get("guestPrice") is not None:
        method = TicketDefinition.PricingMethod.GUEST
        price, currency = money_value(pricing["guestPrice"], "pricingMethod.guestPrice")
    elif pricing.get("pricingOptions") is not None:
        method = TicketDefinition.PricingMethod.OPTIONS
        options = _get(pricing, "pricingOptions.optionDetails")
        if not isinstance(options, list) or not options:
            raise MirrorDataError(f"{entity}.pricingMethod.pricingOptions.optionDetails is missing or empty")
        prices = [
            money_value(
                option.get("price") if isinstance(option, dict) else None,
                f"pricingMethod.pricingOptions.optionDetails[{i}].price",
            )
            for i, option in enumerate(options)
        ]
        price, currency = min(prices, key=lambda p: p[0])
    else:
        raise MirrorDataError(f"{entity}.pricingMethod has none of fixedPrice, guestPrice, pricingOptions")
    sale_status = _optional_str(data, "saleStatus", entity, 32)
    unsold = _int(data, "salesDetails.unsoldCount", entity)
    if unsold is not None and unsold < 0:
        raise MirrorDataError(f"{entity}.salesDetails.unsoldCount is negative ({unsold})")
    return {
        "event_wix_id": _required_str(data, "eventId", entity),
        "name": _optional_str(data, "name", entity),
        "hidden": _bool(data, "hidden", entity),
        "pricing_method": method,
        "price": price.quantize(Decimal("0.01")),
        "currency": currency,
        "initial_limit": _int(data, "initialLimit", entity),
        "unsold_count": unsold,
        "sold_count": _int(data, "salesDetails.soldCount", entity),
        "sold_out": _bool(data, "salesDetails.soldOut", entity),
        "sale_status": sale_status if sale_status in TicketDefinition.SaleStatus.values else "",
        "sale_start": _datetime(data, "salePeriod.startDate", entity),
        "sale_end": _datetime(data, "salePeriod.endDate", entity),
    }


# --- the generic upsert ---------------------------------------------------------------
ENTITY_TYPE_OF = {Event: "event", Policy: "policy", TicketDefinition: "ticket_definition"}


def _history(mirror: MirrorModel, outcome: str, changed: list[str]) -> None:
    MirrorChange.objects.create(
        site_id=mirror.site_id,
        entity_type=ENTITY_TYPE_OF[type(mirror)],
        wix_id=mirror.wix_id,
        kind=outcome,
        revision=mirror.revision,
        changed_fields=changed,
    )


def _is_older(
    incoming_rev: int | None,
    incoming_updated: dt.datetime | None,
    mirror: MirrorModel,
    incoming_sold: int | None = None,
) -> bool:
    """``incoming_sold``: a ticket definition's ``salesDetails.soldCount``. Sales move without
    a revision bump, so at one revision the sold count orders two answers: a lower one is an
    older Get that finished late (a counter must never go back up). The cost: a refund that
    lowers the count at the same revision waits for the next revision bump or resync."""
    if incoming_rev is not None and mirror.revision is not None:
        if incoming_rev != mirror.revision:
            return incoming_rev < mirror.revision
        current_sold = getattr(mirror, "sold_count", None)
        return incoming_sold is not None and current_sold is not None and incoming_sold < current_sold
    if incoming_updated is not None and mirror.wix_updated_date is not None:
        return incoming_updated < mirror.wix_updated_date
    return False


def _mirror_upsert(
    model: type[MirrorModel],
    *,
    site: WixSite,
    data: dict[str, Any],
    entity: str,
    columns_of: Callable[[dict[str, Any]], dict[str, Any]],
    revision_required: bool,
    event: Event | None = None,
    carry_over: tuple[str, ...] = (),
) -> UpsertResult:
    """``event``: the parent's mirror when the caller has it (saves a query per entity).
    ``carry_over``: top-level keys kept from the stored JSON when the incoming one lacks them."""
    wix_id = _required_str(data, "id", entity)
    revision = _revision(data, entity, required=revision_required)
    result = _first_writer_wins(
        lambda: _mirror_upsert_once(
            model,
            site=site,
            data=data,
            entity=entity,
            columns_of=columns_of,
            event=event,
            carry_over=carry_over,
            wix_id=wix_id,
            revision=revision,
        )
    )
    return _announce(result)


def _first_writer_wins(write: Callable[[], UpsertResult]) -> UpsertResult:
    """Run a mirror write; if a concurrent writer inserted the same entity first, run it again.

    ``SELECT ... FOR UPDATE`` locks nothing while the row does not exist yet, so two first
    writers can both insert; the loser hits the unique constraint, and its second run finds
    the row, locks it and applies the revision guard like any later writer.
    """
    try:
        return write()
    except IntegrityError:
        return write()


def _mirror_upsert_once(
    model: type[MirrorModel],
    *,
    site: WixSite,
    data: dict[str, Any],
    entity: str,
    columns_of: Callable[[dict[str, Any]], dict[str, Any]],
    event: Event | None,
    carry_over: tuple[str, ...],
    wix_id: str,
    revision: int | None,
) -> UpsertResult:
    with transaction.atomic():
        mirror = model.objects.select_for_update().filter(site=site, wix_id=wix_id).first()
        if mirror is not None and carry_over:
            kept = {key: mirror.raw[key] for key in carry_over if key not in data and key in mirror.raw}
            data = {**data, **kept} if kept else data
        # Validated before any write: a malformed entity raises and leaves nothing behind.
        columns = columns_of(data)
        fields = {
            **columns,
            "revision": revision,
            "wix_created_date": _datetime(data, "createdDate", entity),
            "wix_updated_date": _datetime(data, "updatedDate", entity),
        }
        if mirror is not None:
            if mirror.is_deleted:
                return UpsertResult(UpsertOutcome.TOMBSTONED, mirror)
            if _is_older(revision, fields["wix_updated_date"], mirror, columns.get("sold_count")):
                return UpsertResult(UpsertOutcome.STALE, mirror)
            if mirror.raw == data:
                return UpsertResult(UpsertOutcome.UNCHANGED, mirror)
        if "event_wix_id" in columns:
            parent = columns["event_wix_id"]
            fields["event"] = (
                event
                if event is not None and event.wix_id == parent
                else Event.objects.filter(site=site, wix_id=parent).first()
            )
        previous: dict[str, Any] = mirror.raw if mirror is not None else {}
        if mirror is None:
            mirror = model(site=site, wix_id=wix_id, raw=data, **fields)  # type: ignore[misc]
            outcome = UpsertOutcome.CREATED
        else:
            mirror.raw = data
            for name, value in fields.items():
                setattr(mirror, name, value)
            outcome = UpsertOutcome.UPDATED
        changed = sorted(k for k in set(data) | set(previous) if data.get(k) != previous.get(k))
        mirror.full_clean(validate_unique=False, validate_constraints=False)
        mirror.save()
        _history(mirror, outcome, changed)
        return UpsertResult(outcome, mirror)


def _mirror_tombstone(
    model: type[MirrorModel],
    *,
    site: WixSite,
    wix_id: str,
    deleted_at: dt.datetime | None,
    defaults: dict[str, Any],
) -> UpsertResult:
    when = deleted_at or timezone.now()
    result = _first_writer_wins(
        lambda: _mirror_tombstone_once(model, site=site, wix_id=wix_id, when=when, defaults=defaults)
    )
    return _announce(result)


def _mirror_tombstone_once(
    model: type[MirrorModel], *, site: WixSite, wix_id: str, when: dt.datetime, defaults: dict[str, Any]
) -> UpsertResult:
    with transaction.atomic():
        mirror = model.objects.select_for_update().filter(site=site, wix_id=wix_id).first()
        if mirror is None:
            mirror = model.objects.create(site=site, wix_id=wix_id, deleted_at=when, **defaults)
        elif mirror.is_deleted:
            return UpsertResult(UpsertOutcome.UNCHANGED, mirror)
        else:
            mirror.deleted_at = when
            mirror.save(update_fields=["deleted_at", "updated_at"])
        _history(mirror, UpsertOutcome.DELETED, [])
        return UpsertResult(UpsertOutcome.DELETED, mirror)


def event_upsert_from_wix(*, site: WixSite, data: dict[str, Any]) -> UpsertResult:
    return _mirror_upsert(
        Event, site=site, data=data, entity="event", columns_of=_event_columns, revision_required=False
    )


def policy_upsert_from_wix(
    *, site: WixSite, data: dict[str, Any], event: Event | None = None
) -> UpsertResult:
    return _mirror_upsert(
        Policy,
        site=site,
        data=data,
        entity="policy",
        columns_of=_policy_columns,
        revision_required=True,
        event=event,
    )


def ticket_definition_upsert_from_wix(
    *, site: WixSite, data: dict[str, Any], event: Event | None = None
) -> UpsertResult:
    return _mirror_upsert(
        TicketDefinition,
        site=site,
        data=data,
        entity="ticketDefinition",
        columns_of=_ticket_definition_columns,
        revision_required=True,
        event=event,
        # Created/Updated webhooks may carry no sales details; keep the counts we know
        # rather than blank them (they come back with the next Get or Query).
        carry_over=("salesDetails",),
    )


def event_delete_from_wix(
    *, site: WixSite, wix_id: str, deleted_at: dt.datetime | None = None
) -> UpsertResult:
    return _mirror_tombstone(Event, site=site, wix_id=wix_id, deleted_at=deleted_at, defaults={})


def policy_delete_from_wix(
    *, site: WixSite, wix_id: str, event_wix_id: str = "", deleted_at: dt.datetime | None = None
) -> UpsertResult:
    return _mirror_tombstone(
        Policy, site=site, wix_id=wix_id, deleted_at=deleted_at, defaults={"event_wix_id": event_wix_id}
    )


def ticket_definition_delete_from_wix(
    *, site: WixSite, wix_id: str, event_wix_id: str = "", deleted_at: dt.datetime | None = None
) -> UpsertResult:
    return _mirror_tombstone(
        TicketDefinition,
        site=site,
        wix_id=wix_id,
        deleted_at=deleted_at,
        defaults={"event_wix_id": event_wix_id},
    )


def mirror_validate(*, entity_type: str, data: Any) -> None:
    """Check an entity as the upsert would, without the database (for webhooks, before the 200)."""
    entity, columns_of = {
        "event": ("event", _event_columns),
        "policy": ("policy", _policy_columns),
        "ticket_definition": ("ticketDefinition", _ticket_definition_columns),
    }[entity_type]
    _required_str(data, "id", entity)
    _revision(data, entity, required=entity_type != "event")  # Events V3 show no revision
    columns_of(data)
    _datetime(data, "updatedDate", entity)
