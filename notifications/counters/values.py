"""What a counter says, from a ticket definition's mirror: pure functions, no database.

- a hidden or deleted definition (or event), or one not mirrored yet: ``unavailable``;
- a sale that has not started: ``not_on_sale``; one that ended: ``unavailable``;
- none left: ``sold_out``; at or under the threshold: ``low`` (the count shows);
- otherwise ``normal``; unlimited tickets (``unsoldCount`` null) never show a count.

Prices: a fixed price as it is; a guest (donation) price and "all options" read "from" the
minimum; one option its own price. Money is formatted in its currency and the counter's
locale (the widget formats again in the page's locale with the browser's ``Intl``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notifications.models import TicketCounter
    from sync.models import TicketDefinition

NORMAL, LOW, SOLD_OUT, NOT_ON_SALE, UNAVAILABLE = "normal", "low", "sold_out", "not_on_sale", "unavailable"
STATES = (NORMAL, LOW, SOLD_OUT, NOT_ON_SALE, UNAVAILABLE)


@dataclass(frozen=True)
class CounterValue:
    state: str
    unsold: int | None = None  # None: unlimited, or unknown
    price: Decimal | None = None
    currency: str = ""
    price_from: bool = False  # the minimum of several prices (guest price, all options)
    name: str = ""
    changed_at: dt.datetime | None = None  # when the mirror last changed


# --- money ------------------------------------------------------------------------------
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "ILS": "₪", "BRL": "R$", "INR": "₹", "PLN": "zł"}
_NO_DECIMALS = {"JPY", "KRW", "HUF", "CLP", "ISK"}
# Languages that write 1.234,50 and put the symbol after the amount ("20,00 €").
_COMMA_AFTER = {"de", "fr", "es", "it", "pt", "pl", "cs", "sk", "sv", "da", "fi", "nb", "no", "ru", "uk"}
_COMMA_BEFORE = {"nl"}  # "€ 20,00"
_GROUP = {"fr": "\u202f", "sv": "\u00a0", "fi": "\u00a0", "nb": "\u00a0", "no": "\u00a0", "ru": "\u00a0",
          "uk": "\u00a0", "pl": "\u00a0", "cs": "\u00a0", "sk": "\u00a0"}  # fmt: skip


def money_format(value: Decimal, currency: str, locale: str = "en") -> str:
    """``€20.00`` (en), ``20,00 €`` (de, fr, pt, ...), ``€ 20,00`` (nl): enough of CLDR for a
    counter's server-side text, without a locale library."""
    tag = locale.replace("_", "-").lower()
    lang = tag.split("-")[0]
    places = 0 if currency in _NO_DECIMALS else 2
    number = f"{value:,.{places}f}"  # 1,234.50
    comma = lang in _COMMA_AFTER or lang in _COMMA_BEFORE
    if comma:
        group = _GROUP.get(tag, _GROUP.get(lang, "."))
        number = number.replace(",", "\x00").replace(".", ",").replace("\x00", group)
    symbol = _SYMBOLS.get(currency, currency)
    if lang in _COMMA_AFTER:
        return f"{number}\u00a0{symbol}"
    if lang in _COMMA_BEFORE or (len(symbol) > 1 and symbol.isalpha()):
        return f"{symbol}\u00a0{number}"
    return f"{symbol}{number}"


def _option_price(raw: dict[str, Any], option_id: str) -> tuple[Decimal, str] | None:
    options = ((raw.get("pricingMethod") or {}).get("pricingOptions") or {}).get("optionDetails") or []
    for option in options:
        if isinstance(option, dict) and option.get("optionId") == option_id:
            price = option.get("price") or {}
            try:
                return Decimal(str(price.get("value"))), str(price.get("currency") or "")
            except InvalidOperation:
                return None
    return None


def counter_value(*, counter: TicketCounter, definition: TicketDefinition | None) -> CounterValue:
    """The counter's state and figures from its definition's mirror (None: not mirrored)."""
    if definition is None or definition.is_deleted or definition.hidden:
        return CounterValue(UNAVAILABLE)
    event = definition.event
    if event is not None and (event.is_deleted or event.status in ("CANCELED", "ENDED")):
        return CounterValue(UNAVAILABLE, name=definition.name)
    price, currency = definition.price, definition.currency
    price_from = definition.pricing_method == "guest"
    if definition.pricing_method == "options":
        if counter.option_id:
            found = _option_price(definition.raw, counter.option_id)
            if found is None:  # the option was removed on Wix
                return CounterValue(UNAVAILABLE, name=definition.name)
            price, currency = found
        else:
            price_from = True  # the mirror keeps the lowest option price
    value = CounterValue(
        NORMAL,
        unsold=definition.unsold_count,
        price=price,
        currency=currency,
        price_from=price_from,
        name=definition.name,
        changed_at=definition.updated_at,
    )
    if definition.sale_status == "SALE_SCHEDULED":
        return replace(value, state=NOT_ON_SALE)
    if definition.sale_status == "SALE_ENDED":
        return replace(value, state=UNAVAILABLE)
    if definition.sold_out or definition.unsold_count == 0:
        return replace(value, state=SOLD_OUT, unsold=0)
    if definition.unsold_count is not None and definition.unsold_count <= counter.threshold:
        return replace(value, state=LOW)
    return value


def _fill(template: str, values: dict[str, str]) -> str:
    # Plain replacement, not str.format: staff's text is never code.
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def price_text(*, counter: TicketCounter, value: CounterValue) -> str:
    if value.price is None:
        return ""
    money = money_format(value.price, value.currency, counter.locale)
    return _fill(counter.text_from, {"price": money}) if value.price_from else money


def counter_text(*, counter: TicketCounter, value: CounterValue) -> str:
    unsold = "" if value.unsold is None else f"{value.unsold:,}"
    if counter.locale.split("-")[0].lower() in _COMMA_AFTER | _COMMA_BEFORE:
        unsold = unsold.replace(",", ".")
    return _fill(
        counter.template_for(value.state),
        {"unsold": unsold, "price": price_text(counter=counter, value=value), "name": value.name},
    )


def counter_document(*, counter: TicketCounter, value: CounterValue) -> dict[str, Any]:
    """The JSON the endpoint serves, the SSE stream sends and Velo receives."""
    return {
        "slug": counter.slug,
        "state": value.state,
        "unsold": value.unsold,
        "show_count": value.state == LOW,
        "price": None if value.price is None else f"{value.price:.2f}",
        "currency": value.currency,
        "price_from": value.price_from,
        "price_text": price_text(counter=counter, value=value),
        "text": counter_text(counter=counter, value=value),
        # For the widget to render again in the page's locale.
        "template": counter.template_for(value.state),
        "template_from": counter.text_from,
        "locale": counter.locale,
        "name": value.name,
        "changed_at": value.changed_at.isoformat() if value.changed_at else None,
    }
