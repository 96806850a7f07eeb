"""The sale-start email: what it says (templates and their context), its headers, and the
signed unsubscribe link.

Every message has HTML and plain-text parts, a ``Message-ID`` of its own (the ledger row's),
and ``List-Unsubscribe`` with an HTTPS one-click link plus ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click`` (RFC 8058): a mail client POSTs to the link, with no cookie and
no login; the token in it is signed (django.core.signing), so addresses cannot be guessed.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.template import Context, Engine, TemplateSyntaxError
from django.template.loader import get_template
from django.urls import reverse

from notifications.models import EmailTemplate, SaleStartCampaign
from notifications.services.consent import site_settings
from sync.models import Event, TicketDefinition, WixSite

UNSUBSCRIBE_SALT = "notifications.unsubscribe"
DEFAULTS = {
    "subject": "notifications/email/subject.txt",
    "text_body": "notifications/email/body.txt",
    "html_body": "notifications/email/body.html",
}


@dataclass(frozen=True)
class Templates:
    subject: str
    text_body: str
    html_body: str


def templates_default() -> Templates:
    sources = {part: get_template(name).template.source for part, name in DEFAULTS.items()}  # type: ignore[attr-defined]
    return Templates(**sources)


def templates_for_site(site: WixSite) -> Templates:
    row = EmailTemplate.objects.filter(site=site).first()
    if row is None:
        return templates_default()
    return Templates(subject=row.subject, text_body=row.text_body, html_body=row.html_body)


# --- the context ------------------------------------------------------------------------
def _money(value: Any) -> tuple[Decimal, str] | None:
    if not isinstance(value, dict):
        return None
    try:
        amount = Decimal(str(value.get("value", value.get("amount"))))
    except (InvalidOperation, TypeError):
        return None
    return amount, str(value.get("currency") or "")


def _fmt(money: tuple[Decimal, str]) -> str:
    return f"{money[0]:.2f} {money[1]}".strip()


def ticket_price_text(raw: dict[str, Any]) -> str:
    """ "25.00 EUR", "Free", "from 10.00 EUR (pay what you want)", "Adult 40.00 EUR, Child 20.00 EUR"."""
    pricing = raw.get("pricingMethod") or {}
    fixed = _money(pricing.get("fixedPrice"))
    if fixed is not None:
        return "Free" if fixed[0] == 0 else _fmt(fixed)
    guest = _money(pricing.get("guestPrice"))
    if guest is not None:
        return f"from {_fmt(guest)} (pay what you want)"
    options = (pricing.get("pricingOptions") or {}).get("optionDetails") or []
    parts = [f"{o.get('name', '')} {_fmt(m)}".strip() for o in options if (m := _money(o.get("price")))]
    return ", ".join(parts) or "see the event page"


def _zone(raw: dict[str, Any]) -> zoneinfo.ZoneInfo:
    name = (raw.get("dateAndTimeSettings") or {}).get("timeZoneId") or "UTC"
    try:
        return zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _local(when: dt.datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    if when is None:
        return "to be announced"
    local = when.astimezone(zone)
    return f"{local:%A %d %B %Y, %H:%M} ({zone.key})"


def event_page_url(event: Event | None, site: WixSite) -> str:
    if event is None:
        return ""
    page = event.raw.get("eventPageUrl")
    if isinstance(page, str) and page.startswith("https://"):
        return page
    if isinstance(page, dict) and page.get("base"):
        return f"{str(page['base']).rstrip('/')}/{str(page.get('path') or '').lstrip('/')}"
    base = site_settings(site).event_page_base_url
    return f"{base.rstrip('/')}/event-details/{event.slug}" if base and event.slug else ""


def campaign_context(campaign: SaleStartCampaign) -> dict[str, Any]:
    """What the templates may use (besides ``name`` and ``unsubscribe_url``, per recipient)."""
    event = campaign.event or Event.objects.filter(site=campaign.site, wix_id=campaign.event_wix_id).first()
    raw = event.raw if event else {}
    zone = _zone(raw)
    location = raw.get("location") or {}
    address = location.get("address")
    address_text = address.get("formatted", "") if isinstance(address, dict) else str(address or "")
    place = ", ".join(p for p in (location.get("name"), address_text) if p) or "to be announced"
    definitions = TicketDefinition.objects.filter(
        site=campaign.site, wix_id__in=campaign.ticket_definition_wix_ids
    ).order_by("wix_created_date", "pk")
    return {
        "event": {
            "title": (event.title if event else "") or "our event",
            "when": _local(event.start_date if event else None, zone),
            "place": place,
            "url": event_page_url(event, campaign.site),
            "time_zone": zone.key,
        },
        "tickets": [{"name": d.name, "price": ticket_price_text(d.raw)} for d in definitions],
        "sale_start_local": _local(campaign.sale_start, zone),
    }


def sample_context() -> dict[str, Any]:
    """For checking a template when no campaign is at hand."""
    return {
        "event": {
            "title": "Spring Gala",
            "when": "Saturday 12 April 2027, 20:00 (Europe/Lisbon)",
            "place": "Teatro Nacional",
            "url": "https://example.com/event-details/spring-gala",
            "time_zone": "Europe/Lisbon",
        },
        "tickets": [{"name": "General Admission", "price": "25.00 EUR"}],
        "sale_start_local": "Monday 10 March 2027, 10:00 (Europe/Lisbon)",
        "name": "Ana",
        "unsubscribe_url": "https://portal.example.com/notifications/unsubscribe/TOKEN/",
    }


# --- rendering ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


_compiled: dict[str, Any] = {}


def _compile(source: str) -> Any:
    template = _compiled.get(source)
    if template is None:
        if len(_compiled) > 64:
            _compiled.clear()
        template = _compiled[source] = Engine.get_default().from_string(source)
    return template


def templates_render(templates: Templates, context: dict[str, Any]) -> Rendered:
    subject = _compile(templates.subject).render(Context(context, autoescape=False))
    return Rendered(
        subject=" ".join(subject.split())[:300],  # one line, whatever the template's blanks
        text=_compile(templates.text_body).render(Context(context, autoescape=False)),
        html=_compile(templates.html_body).render(Context(context)),
    )


def templates_validate(templates: Templates) -> None:
    """Raise ``ValidationError`` naming the part whose template does not compile or render:
    a template error is found when staff save it, not when the campaign sends."""
    errors = {}
    for part in ("subject", "text_body", "html_body"):
        try:
            _compile(getattr(templates, part)).render(Context(sample_context()))
        except (TemplateSyntaxError, Exception) as exc:  # any error in a template is the template's
            errors[part] = f"This template does not render: {exc}"
    if errors:
        raise ValidationError(errors)


# --- unsubscribe links ----------------------------------------------------------------------
def unsubscribe_token(*, site: WixSite, email: str) -> str:
    # Not compressed: the payload is a few bytes, and zlib's set-up per call cost 0.7 ms an email.
    return signing.dumps({"s": site.pk, "e": email}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_token_read(token: str) -> tuple[int, str] | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("s"), int) or not isinstance(data.get("e"), str):
        return None
    return data["s"], data["e"]


def unsubscribe_url(*, site: WixSite, email: str) -> str:
    # Resolving the URL pattern costs more than the rest of the link: done once per process.
    global _unsubscribe_prefix
    if _unsubscribe_prefix is None:
        _unsubscribe_prefix = reverse("notifications:unsubscribe", args=["T"]).removesuffix("T/")
    return f"{settings.PORTAL_BASE_URL}{_unsubscribe_prefix}{unsubscribe_token(site=site, email=email)}/"


_unsubscribe_prefix: str | None = None


# --- the message --------------------------------------------------------------------------
def message_id_for(notification_pk: int) -> str:
    domain = settings.PORTAL_BASE_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
    return f"<sale-start.{notification_pk}@{domain}>"


def message_build(
    *,
    campaign: SaleStartCampaign,
    templates: Templates,
    context: dict[str, Any],
    email: str,
    name: str,
    message_id: str,
    sender: str | None = None,
) -> EmailMultiAlternatives:
    link = unsubscribe_url(site=campaign.site, email=email)
    rendered = templates_render(templates, {**context, "name": name, "unsubscribe_url": link})
    sender = sender or site_settings(campaign.site).from_email or settings.NOTIFICATIONS_FROM_EMAIL
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=sender,
        to=[email],
        headers={
            "Message-ID": message_id,
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(rendered.html, "text/html")
    return message
