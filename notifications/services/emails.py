"""The sale-start email: what it says (templates and their context), its headers, and the
signed unsubscribe link.

Every message has HTML and plain-text parts, a ``Message-ID`` of its own (the ledger row's),
and ``List-Unsubscribe`` with an HTTPS one-click link plus ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click`` (RFC 8058): a mail client POSTs to the link, with no cookie and
no login; the token in it is signed (django.core.signing), so addresses cannot be guessed.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import Lexer, TokenType
from django.template.loader import get_template
from django.urls import reverse
from django.utils.html import conditional_escape

from notifications.models import EmailTemplate, SaleStartCampaign
from notifications.services.consent import site_settings
from notifications.services.mime import CampaignEmail
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


def _render_parts(templates: Templates, context: dict[str, Any]) -> tuple[str, str, str]:
    return (
        _compile(templates.subject).render(Context(context, autoescape=False)),
        _compile(templates.text_body).render(Context(context, autoescape=False)),
        _compile(templates.html_body).render(Context(context)),
    )


def _one_line(subject: str) -> str:
    return " ".join(subject.split())[:300]  # one line, whatever the template's blanks


def templates_render(templates: Templates, context: dict[str, Any]) -> Rendered:
    subject, text, html = _render_parts(templates, context)
    return Rendered(subject=_one_line(subject), text=text, html=html)


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
def unsubscribe_token(*, site: WixSite, email: str, signer: signing.TimestampSigner | None = None) -> str:
    # Not compressed: the payload is a few bytes, and zlib's set-up per call cost 0.7 ms an email.
    # ``signer``: one made for many links (what ``signing.dumps`` would make for each).
    signer = signer or signing.TimestampSigner(salt=UNSUBSCRIBE_SALT)
    return signer.sign_object({"s": site.pk, "e": email})


def unsubscribe_token_read(token: str) -> tuple[int, str] | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("s"), int) or not isinstance(data.get("e"), str):
        return None
    return data["s"], data["e"]


def unsubscribe_url(*, site: WixSite, email: str, signer: signing.TimestampSigner | None = None) -> str:
    token = unsubscribe_token(site=site, email=email, signer=signer)
    return f"{settings.PORTAL_BASE_URL}{_unsubscribe_path()}{token}/"


@functools.cache
def _unsubscribe_path() -> str:
    # Resolving the URL pattern costs more than the rest of the link: done once per process.
    return reverse("notifications:unsubscribe", args=["T"]).removesuffix("T/")


# --- one recipient after another ------------------------------------------------------------
RECIPIENT_VARIABLES = ("name", "unsubscribe_url")
# Tags whose output depends only on their arguments and the nodes inside them: no include, no
# autoescape or filter block, no custom tag (which may read the whole context).
_PLAIN_TAGS = {"if", "elif", "else", "endif", "for", "empty", "endfor", "with", "endwith"}
_PLAIN_TAGS |= {"comment", "endcomment"}
_MENTION = re.compile(r"(?<![\w.])(?:name|unsubscribe_url)(?!\w)")
_BARE_TEST = re.compile(r"(?:el)?if\s+(?:not\s+)?(?:name|unsubscribe_url)\Z")


def _per_recipient_plain(source: str) -> bool:
    """True if a template uses the recipient's values only as ``{{ name }}`` (or
    ``{{ unsubscribe_url }}``) and in bare tests (``{% if name %}``): its output for a recipient
    is then the campaign's output with the values put in (escaped where the template escapes)."""
    try:
        tokens = Lexer(source).tokenize()
    except TemplateSyntaxError:
        return False
    for token in tokens:
        contents = token.contents.strip()
        if token.token_type == TokenType.VAR:
            if _MENTION.search(contents) and contents not in RECIPIENT_VARIABLES:
                return False
        elif token.token_type == TokenType.BLOCK:
            if (contents.split() or [""])[0] not in _PLAIN_TAGS:
                return False
            if _MENTION.search(contents) and not _BARE_TEST.match(contents):
                return False
    return True


class RecipientRenderer:
    """A campaign's templates rendered for one recipient after another.

    Where the templates only print the recipient's values and test them bare (the defaults
    do), they are rendered once per campaign with a marker in each value's place (once per
    combination of empty and set values, for the ``{% if %}``), and each recipient's copy is
    that text with the values put in: 3 string replacements instead of 3 template renders.
    Any other template is rendered in full for each recipient. Both give the same text (the
    tests compare them)."""

    def __init__(self, templates: Templates, context: dict[str, Any]) -> None:
        self.templates = templates
        self.context = context
        sources = (templates.subject, templates.text_body, templates.html_body)
        self.plain = all(_per_recipient_plain(source) for source in sources)
        self.markers = {variable: f"\x00{secrets.token_hex(8)}\x00" for variable in RECIPIENT_VARIABLES}
        self._rendered: dict[tuple[bool, ...], tuple[str, str, str]] = {}

    def render(self, *, name: str, unsubscribe_url: str) -> Rendered:
        values = {"name": name, "unsubscribe_url": unsubscribe_url}
        if not self.plain:
            return templates_render(self.templates, {**self.context, **values})
        key = tuple(bool(values[v]) for v in RECIPIENT_VARIABLES)
        if key not in self._rendered:
            marked = {v: self.markers[v] if values[v] else "" for v in RECIPIENT_VARIABLES}
            self._rendered[key] = _render_parts(self.templates, {**self.context, **marked})
        subject, text, html = self._rendered[key]
        for variable, value in values.items():
            if value:
                marker = self.markers[variable]
                subject = subject.replace(marker, value)
                text = text.replace(marker, value)
                html = html.replace(marker, conditional_escape(value))
        return Rendered(subject=_one_line(subject), text=text, html=html)


# --- the message --------------------------------------------------------------------------
def message_id_for(notification_pk: int) -> str:
    domain = settings.PORTAL_BASE_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
    return f"<sale-start.{notification_pk}@{domain}>"


class CampaignMessages:
    """One campaign's emails, recipient after recipient: the templates and their context, the
    sender and the unsubscribe signer are set up once (a drain keeps one per campaign)."""

    def __init__(
        self,
        *,
        campaign: SaleStartCampaign,
        templates: Templates | None = None,
        context: dict[str, Any] | None = None,
        sender: str | None = None,
    ) -> None:
        self.campaign = campaign
        self.context = context if context is not None else campaign_context(campaign)
        self.renderer = RecipientRenderer(templates or templates_for_site(campaign.site), self.context)
        self.sender = sender or site_settings(campaign.site).from_email or settings.NOTIFICATIONS_FROM_EMAIL
        self.signer = signing.TimestampSigner(salt=UNSUBSCRIBE_SALT)

    def build(self, *, email: str, name: str, message_id: str) -> CampaignEmail:
        link = unsubscribe_url(site=self.campaign.site, email=email, signer=self.signer)
        rendered = self.renderer.render(name=name, unsubscribe_url=link)
        message = CampaignEmail(
            subject=rendered.subject,
            body=rendered.text,
            from_email=self.sender,
            to=[email],
            headers={
                "Message-ID": message_id,
                "List-Unsubscribe": f"<{link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
        message.attach_alternative(rendered.html, "text/html")
        return message


def message_build(
    *,
    campaign: SaleStartCampaign,
    templates: Templates,
    context: dict[str, Any],
    email: str,
    name: str,
    message_id: str,
    sender: str | None = None,
) -> CampaignEmail:
    """One email (a test, a preview); a drain builds many with one :class:`CampaignMessages`."""
    messages = CampaignMessages(campaign=campaign, templates=templates, context=context, sender=sender)
    return messages.build(email=email, name=name, message_id=message_id)
