"""pretix read back: which fields of a linked record were changed by hand since the last push.

Only what the portal sent is compared (the link's ``last_payload``): keys pretix adds, languages
staff added to a name, meta data of their own are theirs. Values are compared as pretix means
them: date-times as instants (pretix answers in the event's time zone), prices as numbers, and
an empty text, ``null`` and ``{}`` as the same nothing.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_datetime

from sync.clients.base import ExternalError, RecordedHttp
from sync.clients.pretix.client import ItemRef, PretixClient
from sync.clients.pretix.protocol import OPTION_META
from sync.domain.entity_types import EntityType

GONE = "(record)"  # the drift key of a record deleted by hand
Drift = dict[str, dict[str, Any]]  # field path → {"pushed": …, "found": …}


def _same(pushed: Any, found: Any) -> bool:
    if pushed in (None, "", {}, []) and found in (None, "", {}, []):
        return True
    if isinstance(pushed, str) and isinstance(found, str):
        if "T" in pushed and "T" in found:
            a, b = parse_datetime(pushed), parse_datetime(found)
            if a is not None and b is not None and a.tzinfo and b.tzinfo:
                return a == b
        try:
            return Decimal(pushed) == Decimal(found)
        except InvalidOperation:
            return pushed == found
    return bool(pushed == found)


def diff(pushed: Any, found: Any, path: str = "") -> Drift:
    """The fields of ``pushed`` that ``found`` holds otherwise (dicts: pushed keys only)."""
    if isinstance(pushed, dict) and isinstance(found, dict):
        drift: Drift = {}
        for key, value in pushed.items():
            if key in found:
                drift.update(diff(value, found[key], f"{path}.{key}" if path else str(key)))
        return drift
    if isinstance(pushed, list) and isinstance(found, list) and len(pushed) == len(found):
        drift = {}
        for index, (a, b) in enumerate(zip(pushed, found, strict=True)):
            drift.update(diff(a, b, f"{path}[{index}]"))
        return drift
    if isinstance(pushed, dict | list) and not _same(pushed, found):
        return {path: {"pushed": pushed, "found": found}}
    return {} if _same(pushed, found) else {path: {"pushed": pushed, "found": found}}


class DriftReader:
    """Reads linked records back from pretix, one drift report per link. Each event's settings
    (its confirm texts, shared by its policies) are read once."""

    def __init__(self, adapter: PretixClient, http: RecordedHttp) -> None:
        self.adapter = adapter
        self.http = http
        self._settings: dict[str, Any] = {}

    def _get(self, path: str) -> Any:
        """The record, or None if pretix no longer has it (404, or 403 for a missing event)."""
        return self.adapter._call(self.http, "check", "GET", path, allow=(403, 404))

    def read(self, *, entity_type: str, external_id: str, pushed: dict[str, Any]) -> Drift:
        if entity_type == EntityType.EVENT:
            event = self._get(f"events/{external_id}/")
            if event is None:
                return _gone(external_id)
            return diff({k: v for k, v in pushed.items() if k != "slug"}, event)
        if entity_type == EntityType.POLICY:
            slug = external_id.split("/confirm_texts/")[0]
            if slug not in self._settings:
                self._settings[slug] = self._get(f"events/{slug}/settings/")
            settings = self._settings[slug]
            if settings is None:
                return _gone(slug)
            return diff({"confirm_texts": pushed.get("confirm_texts") or []}, settings)
        return self._item(ItemRef.parse(external_id), pushed)

    def _item(self, ref: ItemRef, pushed: dict[str, Any]) -> Drift:
        item = self._get(f"events/{ref.slug}/items/{ref.item_id}/")
        if item is None:
            return _gone(str(ref))
        own = {k: v for k, v in pushed.items() if k not in ("quota", "variations")}
        drift = diff(own, item)
        # Variations matched by Wix option id, not by position: staff may reorder them.
        found = {(v.get("meta_data") or {}).get(OPTION_META): v for v in item.get("variations") or []}
        for index, variation in enumerate(pushed.get("variations") or []):
            key = (variation.get("meta_data") or {}).get(OPTION_META)
            if key not in found:
                drift[f"variations[{index}]"] = {"pushed": variation, "found": None}
                continue
            fields = {k: v for k, v in variation.items() if k not in ("meta_data", "position")}
            drift.update(diff(fields, found[key], f"variations[{index}]"))
        quota = self._get(f"events/{ref.slug}/quotas/{ref.quota_id}/")
        if quota is None:
            drift["quota"] = {"pushed": pushed.get("quota"), "found": None}
        else:
            drift.update(diff(pushed.get("quota") or {}, quota, "quota"))
        return drift


def _gone(external_id: str) -> Drift:
    return {GONE: {"pushed": external_id, "found": "deleted in pretix"}}


def drift_read(
    adapter: PretixClient, http: RecordedHttp, links: list[tuple[str, str, dict[str, Any]]]
) -> list[Drift | ExternalError]:
    """One report (or the error reading it) per (entity type, external id, last payload)."""
    reader = DriftReader(adapter, http)
    reports: list[Drift | ExternalError] = []
    for entity_type, external_id, pushed in links:
        try:
            reports.append(reader.read(entity_type=entity_type, external_id=external_id, pushed=pushed))
        except ExternalError as exc:
            reports.append(exc)
    return reports
