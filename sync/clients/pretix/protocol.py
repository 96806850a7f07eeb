"""pretix's own API vocabulary: the meta data keys the portal tags records with, pretix's
field limits, and its slug rule (pretix 2026.8). Pure: no database, no network."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sync.domain.entity_types import EntityType

EVENT_META = "wix_event_id"
ITEM_META = "wix_ticket_definition_id"
OPTION_META = "wix_option_id"
SLUG_MAX = 50
# pretix's field limits (pretix 2026.8, pretix/base/models/event.py and items.py). Names are
# I18nCharFields: pretix's API does not check their max_length, its control panel forms do,
# so an over-long name would leave staff unable to save the event or item in pretix. A
# quota's name is a CharField: the API refuses it (400). Texts are cut with an ellipsis.
TEXT_LIMITS: dict[str, dict[str, int]] = {
    EntityType.EVENT: {"name": 200, "location": 200},  # Event.name, Event.location
    EntityType.TICKET_DEFINITION: {
        "name": 255,  # Item.name
        "variations[*].value": 255,  # ItemVariation.value
        "quota.name": 200,  # Quota.name
    },
}
PRICE_MAX = Decimal("99999999999.99")  # Item/ItemVariation.default_price: max_digits=13, decimal_places=2
QUOTA_SIZE_MAX = 2_147_483_647  # Quota.size: a PositiveIntegerField


def pretix_slug(value: Any, fallback: str) -> str:
    """pretix slugs: letters, digits, dots and dashes, starting with a letter or digit."""
    slug = re.sub(r"[^a-z0-9.-]+", "-", str(value or "").lower()).strip("-.")[:SLUG_MAX].rstrip("-.")
    return slug or f"wix-{fallback[:8]}".lower()


def first_text(value: Any) -> str:
    if isinstance(value, dict):
        return next((str(v) for v in value.values() if v), "")
    return str(value or "")


def cut_text(value: Any, limit: int) -> Any:
    """A text (or each language of a pretix language map) cut to ``limit`` characters."""
    if isinstance(value, dict):
        return {key: cut_text(text, limit) for key, text in value.items()}
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1].rstrip() + "…"
    return value


def limits_apply(body: dict[str, Any], limits: dict[str, int]) -> None:
    """Cut the texts of ``body`` named in ``limits`` (``a.b``, ``list[*].field``) in place."""
    for path, limit in limits.items():
        head, _, field = path.partition(".")
        if head.endswith("[*]"):
            for item in body.get(head[:-3]) or []:
                if isinstance(item, dict) and field in item:
                    item[field] = cut_text(item[field], limit)
        elif field:
            if isinstance(body.get(head), dict) and field in body[head]:
                body[head][field] = cut_text(body[head][field], limit)
        elif head in body:
            body[head] = cut_text(body[head], limit)
