"""Field mappings: Wix field path → transform → field of the external payload.

Paths are dotted, with ``[n]`` for one list item and ``[*]`` for every item; a target
with ``[*]`` builds one object per item (``options[*].price``). Mappings are checked on
save against the fields Wix documents for each entity type (../shared/wix-api.md §2a, §3b),
so that a typo is caught in the admin rather than at push time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from bs4 import BeautifulSoup, NavigableString
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.dateparse import parse_datetime
from markdownify import MarkdownConverter

from sync.domain.entity_types import EntityType


class Transform(models.TextChoices):
    TEXT = "text", "Text"
    INTEGER = "integer", "Integer"
    DECIMAL = "decimal", "Decimal (from Wix's money string)"
    DATETIME = "datetime", "ISO date-time (UTC)"
    BOOLEAN = "boolean", "Boolean"
    ENUM_MAP = "enum_map", "Enum map"
    TEMPLATE = "template", "Template"
    CONSTANT = "constant", "Constant"
    HTML_TO_MARKDOWN = "html_to_markdown", "HTML to Markdown"


# Value kinds of the documented Wix fields. "intstr" is Wix's int64-as-string.
STR, INTSTR, INT, BOOL, MONEY, DATETIME, ENUM = "str", "intstr", "int", "bool", "money", "datetime", "enum"
_COMMON = {"id": STR, "revision": INTSTR, "createdDate": DATETIME, "updatedDate": DATETIME, "eventId": STR}
WIX_FIELDS: dict[str, dict[str, str]] = {
    # Events V3 core fields (../shared/wix-api.md §5).
    EntityType.EVENT: {
        "id": STR,
        "title": STR,
        "slug": STR,
        "status": ENUM,
        "createdDate": DATETIME,
        "updatedDate": DATETIME,
        "dateAndTimeSettings.dateAndTimeTbd": BOOL,
        "dateAndTimeSettings.startDate": DATETIME,
        "dateAndTimeSettings.endDate": DATETIME,
        "dateAndTimeSettings.timeZoneId": STR,
        "location.name": STR,
        "location.type": ENUM,
        "shortDescription": STR,
        "detailedDescription": STR,
        "eventPageUrl": STR,
        "registration.initialType": ENUM,
    },
    EntityType.POLICY: {**_COMMON, "name": STR, "body": STR},
    EntityType.TICKET_DEFINITION: {
        **_COMMON,
        "name": STR,
        "description": STR,
        "policyText": STR,
        "hidden": BOOL,
        "limited": BOOL,
        "initialLimit": INT,
        "actualLimit": INT,
        "limitPerCheckout": INT,
        "feeType": ENUM,
        "saleStatus": ENUM,
        "pricingMethod.fixedPrice.value": MONEY,
        "pricingMethod.fixedPrice.currency": STR,
        "pricingMethod.guestPrice.value": MONEY,
        "pricingMethod.guestPrice.currency": STR,
        "pricingMethod.pricingOptions.optionDetails[*].optionId": STR,
        "pricingMethod.pricingOptions.optionDetails[*].name": STR,
        "pricingMethod.pricingOptions.optionDetails[*].price.value": MONEY,
        "pricingMethod.pricingOptions.optionDetails[*].price.currency": STR,
        "pricingMethod.pricingType": ENUM,
        "pricingMethod.free": BOOL,
        "salePeriod.startDate": DATETIME,
        "salePeriod.endDate": DATETIME,
        "salePeriod.displayNotOnSale": BOOL,
        "salesDetails.unsoldCount": INT,
        "salesDetails.soldCount": INT,
        "salesDetails.reservedCount": INT,
        "salesDetails.soldOut": BOOL,
    },
}
# Which value kinds each transform can read.
ACCEPTS: dict[str, set[str]] = {
    Transform.TEXT: {STR, INTSTR, INT, BOOL, MONEY, DATETIME, ENUM},
    Transform.INTEGER: {INT, INTSTR},
    Transform.DECIMAL: {MONEY, INT, INTSTR},
    Transform.DATETIME: {DATETIME},
    Transform.BOOLEAN: {BOOL},
    Transform.ENUM_MAP: {STR, ENUM, BOOL, INT, INTSTR},
    Transform.HTML_TO_MARKDOWN: {STR},
}
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+|\*)\]")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_MISSING = object()


class MappingError(ValueError):
    """A mapping cannot produce a payload for this entity (permanent: retrying won't help)."""


@dataclass(frozen=True)
class MappingSpec:
    """The part of a FieldMapping the engine needs; built from saved rows or unsaved forms."""

    source_path: str
    target_field: str
    transform: str
    argument: str = ""
    required: bool = False

    @classmethod
    def of(cls, mapping: MappingLike) -> MappingSpec:
        return cls(
            mapping.source_path, mapping.target_field, mapping.transform, mapping.argument, mapping.required
        )


class MappingLike(Protocol):
    """A saved FieldMapping or an unsaved form's values."""

    source_path: str
    target_field: str
    transform: str
    argument: str
    required: bool


def spec_of(mapping: MappingLike) -> MappingSpec:
    return MappingSpec.of(mapping)


# --- paths ------------------------------------------------------------------------------
def _tokens(path: str) -> list[str | int]:
    tokens: list[str | int] = []
    position = 0
    for match in _TOKEN.finditer(path):
        gap = path[position : match.start()]
        if gap not in ("", "."):
            raise ValueError(f"cannot read {path!r} near {gap!r}")
        name, index = match.groups()
        tokens.append(name if name is not None else ("*" if index == "*" else int(index)))
        position = match.end()
    if not tokens or path[position:]:
        raise ValueError(f"cannot read {path!r}")
    return tokens


def normalise_path(path: str) -> str:
    """``a[0].b`` → ``a[*].b``: the schema key of a concrete path."""
    return re.sub(r"\[\d+\]", "[*]", path)


def _read(value: Any, tokens: list[str | int]) -> Any:
    for token in tokens:
        if isinstance(token, int):
            if not isinstance(value, list) or token >= len(value):
                return _MISSING
            value = value[token]
        elif isinstance(value, dict) and token in value:
            value = value[token]
        else:
            return _MISSING
    return value


def read_source(data: dict[str, Any], path: str) -> Any:
    """One value, or for a ``[*]`` path a list with one value (or _MISSING) per item."""
    tokens = _tokens(path)
    if "*" not in tokens:
        return _read(data, tokens)
    star = tokens.index("*")
    items = _read(data, tokens[:star])
    if not isinstance(items, list):
        return _MISSING
    return [_read(item, tokens[star + 1 :]) for item in items]


def _write(payload: dict[str, Any], tokens: list[str | int], value: Any) -> None:
    node: Any = payload
    for token, following in itertools.pairwise(tokens):
        if isinstance(token, int):
            while len(node) <= token:
                node.append({})
            node = node[token]
        else:
            node = node.setdefault(token, [] if isinstance(following, int) else {})
    node[tokens[-1]] = value


# --- transforms -------------------------------------------------------------------------
def _transform(spec: MappingSpec, value: Any, data: dict[str, Any]) -> Any:
    kind = spec.transform
    if kind == Transform.TEXT:
        return (
            value if isinstance(value, str) else json.dumps(value) if isinstance(value, bool) else str(value)
        )
    if kind == Transform.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise MappingError(f"{spec.source_path}: {value!r} is not an integer")
        try:
            return int(value)
        except ValueError as exc:
            raise MappingError(f"{spec.source_path}: {value!r} is not an integer") from exc
    if kind == Transform.DECIMAL:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise MappingError(f"{spec.source_path}: {value!r} is not a decimal string")
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise MappingError(f"{spec.source_path}: {value!r} is not a decimal string") from exc
        if not number.is_finite():
            raise MappingError(f"{spec.source_path}: {value!r} is not a finite number")
        # A string keeps the exact amount; JSON numbers are floats for many receivers.
        return str(number.quantize(Decimal("0.01")))
    if kind == Transform.DATETIME:
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise MappingError(f"{spec.source_path}: {value!r} is not an ISO-8601 date-time")
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if kind == Transform.BOOLEAN:
        if not isinstance(value, bool):
            raise MappingError(f"{spec.source_path}: {value!r} is not a boolean")
        return value
    if kind == Transform.HTML_TO_MARKDOWN:
        if not isinstance(value, str):
            raise MappingError(f"{spec.source_path}: {value!r} is not HTML text")
        return html_to_markdown(value)
    if kind == Transform.ENUM_MAP:
        table = json.loads(spec.argument)
        key = json.dumps(value) if isinstance(value, bool) else str(value)
        if key not in table:
            raise MappingError(f"{spec.source_path}: {value!r} is not in the enum map ({', '.join(table)})")
        return table[key]
    raise MappingError(f"unknown transform {kind!r}")


def _template(spec: MappingSpec, data: dict[str, Any], html_source: str = "") -> str:
    """Fill {wix.path} placeholders. For an HTML template, ``html_source`` names the one field
    inserted as HTML; the others are text and are escaped."""

    def fill(match: re.Match[str]) -> str:
        path = match.group(1).strip()
        value = read_source(data, path)
        text = "" if value is _MISSING or value is None or isinstance(value, list) else str(value)
        return text if not html_source or path == html_source else html.escape(text, quote=False)

    return _PLACEHOLDER.sub(fill, spec.argument)


def html_to_markdown(value: str) -> str:
    """Wix's rich text (HTML) as Markdown that pretix's Markdown renders back as the same text.

    ATX headings and "-" bullets read the same in any Markdown; links stay [text](url) so that
    the renderer's own link handling (pretix's redirect page) applies; images are dropped, as
    pretix's HTML filter would show an <img> tag as text. Text is HTML-escaped first: Markdown
    passes entities through but would read a decoded "<b>" as a tag, and cannot escape "<" or
    "&" with a backslash.
    """
    soup = BeautifulSoup(value, "html.parser")
    for node in list(soup.find_all(string=True)):
        if type(node) is NavigableString and not node.find_parent(["pre", "code"]):
            node.replace_with(NavigableString(html.escape(str(node), quote=False)))
    converter = MarkdownConverter(heading_style="ATX", bullets="-", autolinks=False, strip=["img"])
    return converter.convert_soup(soup).strip()


def mapping_apply(specs: Iterable[MappingSpec], data: dict[str, Any]) -> dict[str, Any]:
    """Build the external payload for one Wix entity. Raises MappingError naming the field."""
    payload: dict[str, Any] = {}
    for spec in specs:
        target = _tokens(spec.target_field)
        if spec.transform == Transform.CONSTANT:
            _write(payload, target, json.loads(spec.argument))
            continue
        if spec.transform == Transform.TEMPLATE:
            _write(payload, target, _template(spec, data))
            continue
        if spec.transform == Transform.HTML_TO_MARKDOWN and spec.argument:
            # Like a template, always written (a missing field is empty).
            _write(payload, target, html_to_markdown(_template(spec, data, html_source=spec.source_path)))
            continue
        value = read_source(data, spec.source_path)
        if value is _MISSING or value is None:
            if spec.required:
                raise MappingError(f"{spec.source_path} is required by {spec.target_field} but missing")
            continue
        if isinstance(value, list) and "*" in target:
            star = target.index("*")
            for index, item in enumerate(value):
                if item is _MISSING or item is None:
                    if spec.required:
                        raise MappingError(f"{spec.source_path} item {index} is required but missing")
                    continue
                _write(payload, [*target[:star], index, *target[star + 1 :]], _transform(spec, item, data))
        elif isinstance(value, list) and "*" in _tokens(spec.source_path):
            _write(
                payload,
                target,
                [_transform(spec, v, data) for v in value if v is not _MISSING and v is not None],
            )
        else:
            _write(payload, target, _transform(spec, value, data))
    return payload


def payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# --- validation on save -----------------------------------------------------------------
def mapping_validate(*, entity_type: str, spec: MappingSpec) -> None:
    """Refuse a mapping that cannot work: unknown Wix path, wrong transform, bad argument."""
    errors: dict[str, str] = {}
    fields = WIX_FIELDS.get(entity_type, {})
    try:
        target = _tokens(spec.target_field)
        if target.count("*") > 1 or any(isinstance(t, int) for t in target):
            errors["target_field"] = "Use at most one [*] and no [n] in a target field."
    except ValueError as exc:
        errors["target_field"] = f"Not a dotted path: {exc}."
    if spec.transform in (Transform.CONSTANT, Transform.ENUM_MAP):
        try:
            argument = json.loads(spec.argument)
        except ValueError:
            errors["argument"] = "Must be valid JSON."
        else:
            if spec.transform == Transform.ENUM_MAP and (not isinstance(argument, dict) or not argument):
                errors["argument"] = (
                    'An enum map is a non-empty JSON object, e.g. {"SALE_STARTED": "on_sale"}.'
                )
    if spec.transform in (Transform.TEMPLATE, Transform.HTML_TO_MARKDOWN):
        placeholders = _PLACEHOLDER.findall(spec.argument)
        if not spec.argument and spec.transform == Transform.TEMPLATE:
            errors["argument"] = "A template needs text, e.g. {name} ({pricingMethod.fixedPrice.currency})."
        unknown = [p for p in placeholders if normalise_path(p.strip()) not in fields]
        if unknown:
            errors["argument"] = f"Unknown Wix field(s) for a {entity_type}: {', '.join(unknown)}."
    if spec.transform in (Transform.CONSTANT, Transform.TEMPLATE):
        if spec.source_path:
            errors["source_path"] = "A constant or a template takes no source path."
    elif not spec.source_path:
        errors["source_path"] = "Required for this transform."
    else:
        try:
            source = _tokens(spec.source_path)
        except ValueError as exc:
            errors["source_path"] = f"Not a dotted path: {exc}."
        else:
            kind = fields.get(normalise_path(spec.source_path))
            if kind is None:
                errors["source_path"] = f"Wix has no field {spec.source_path!r} on a {entity_type}."
            elif kind not in ACCEPTS[spec.transform]:
                errors["transform"] = (
                    f"{Transform(spec.transform).label} cannot apply to {spec.source_path} (a {kind} value)."
                )
            # A [*] source into a plain target is allowed: the payload gets a list.
            if "*" not in source and "target_field" not in errors and "*" in target:
                errors["target_field"] = "A [*] target needs a [*] source path."
    if errors:
        raise ValidationError(errors)


MappingRow = tuple[str, str, str, str, bool]  # source, target, transform, argument, required
