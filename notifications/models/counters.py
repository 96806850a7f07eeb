"""Live ticket counters: "Only 3 tickets left at €20", embedded on a Wix page.

A counter names a ticket definition by its Wix id (it may be set up before the definition is
mirrored, and shows "unavailable" until it is), what to say in each case, and which site
origins may read it. Values come from the mirror (``sync.TicketDefinition``); rendering,
serving and pushing live in ``notifications.counters``.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from portal.models import Job, TimestampedModel
from portal.secrets import SecretName

# The placeholders a counter's texts may use; anything else in braces is refused on save.
PLACEHOLDERS = ("unsold", "price", "name")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
# scheme://host[:port], as a browser sends it in Origin.
_ORIGIN_RE = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$")


def _template_check(value: str) -> None:
    unknown = sorted({name for name in _PLACEHOLDER_RE.findall(value) if name not in PLACEHOLDERS})
    if unknown:
        raise ValidationError(
            f"Unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
            f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}."
        )


def origins_parse(raw: str) -> list[str]:
    """One origin per line (or comma-separated), lower case, without a trailing slash."""
    return [o.strip().rstrip("/").lower() for o in re.split(r"[\s,]+", raw) if o.strip()]


def _origins_check(value: str) -> None:
    bad = [origin for origin in origins_parse(value) if not _ORIGIN_RE.match(origin)]
    if bad:
        raise ValidationError(
            f"Not an origin: {', '.join(bad)} (write scheme://host[:port], e.g. https://www.example.com)."
        )


class TicketCounter(TimestampedModel):
    class State(models.TextChoices):
        NORMAL = "normal", "Normal"
        LOW = "low", "Few left"
        SOLD_OUT = "sold_out", "Sold out"
        NOT_ON_SALE = "not_on_sale", "Not yet on sale"
        UNAVAILABLE = "unavailable", "Unavailable"

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="+")
    ticket_definition_wix_id = models.CharField("ticket definition (Wix id)", max_length=64)
    option_id = models.CharField(
        "pricing option",
        max_length=64,
        blank=True,
        help_text='For option pricing: the option whose price shows. Blank: all options, "from" the lowest.',
    )
    slug = models.SlugField(unique=True, help_text="Public: the counter is served at /counter/<slug>/.")
    threshold = models.PositiveIntegerField(
        default=10, help_text="At or under this many unsold tickets the low text (with the count) shows."
    )
    text_normal = models.CharField(max_length=200, default="Tickets {price}", validators=[_template_check])
    text_low = models.CharField(
        max_length=200, default="Only {unsold} tickets left at {price}", validators=[_template_check]
    )
    text_sold_out = models.CharField(max_length=200, default="Sold out", validators=[_template_check])
    text_not_on_sale = models.CharField(
        max_length=200, default="Tickets on sale soon", validators=[_template_check]
    )
    text_unavailable = models.CharField(
        max_length=200, default="Tickets unavailable", validators=[_template_check]
    )
    text_from = models.CharField(
        "price from",
        max_length=60,
        default="from {price}",
        validators=[_template_check],
        help_text="How a minimum price reads (guest prices, all options).",
    )
    locale = models.CharField(
        max_length=16,
        default="en",
        validators=[RegexValidator(r"^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})*$")],
        help_text="Locale of the text the endpoint renders; the widget formats in the page's own.",
    )
    allowed_origins = models.TextField(
        blank=True,
        validators=[_origins_check],
        help_text="Site origins whose pages may read the counter (one per line), "
        "e.g. https://www.example.com. Others get no CORS headers.",
    )
    velo_url = models.URLField(
        "Velo HTTP function",
        blank=True,
        help_text="Optional: each change is POSTed here, signed, "
        "e.g. https://www.example.com/_functions/ticketCounter.",
    )
    velo_secret_env = models.CharField(
        "Velo secret (variable)",
        max_length=100,
        blank=True,
        validators=[SecretName("COUNTER_")],
        help_text="Name of the environment variable (COUNTER_...) holding the HMAC key "
        "the HTTP function checks.",
    )

    class Meta:
        ordering = ["slug"]
        # Where a counter's signed pushes go (and with which key) is the superusers' to set, like
        # a ticketing system's base URL and secret (sync.change_system_endpoint).
        permissions = [("change_counter_endpoint", "Can change a counter's Velo URL and secret variable")]
        indexes = [
            # mirror_changed → the counters of one ticket definition.
            models.Index(fields=["site", "ticket_definition_wix_id"], name="counter_site_td_idx"),
        ]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        if self.velo_url and not self.velo_secret_env:
            raise ValidationError({"velo_secret_env": "A Velo push is signed: name its secret's variable."})

    @property
    def origins(self) -> list[str]:
        return origins_parse(self.allowed_origins)

    def template_for(self, state: str) -> str:
        return str(getattr(self, f"text_{state}"))


class CounterPush(Job):
    """The latest value of a counter, to be POSTed to its site's Velo HTTP function.

    One waiting row per counter: a change while one waits replaces its payload (the function
    wants the newest value, not each step), so a burst of sales makes one push.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    WAITING, CLAIMED, DEAD = Status.WAITING, Status.SENDING, Status.FAILED

    counter = models.ForeignKey(TicketCounter, on_delete=models.CASCADE, related_name="pushes")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    payload = models.JSONField(default=dict)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # The coalescing: one waiting push per counter.
            models.UniqueConstraint(
                fields=["counter"], condition=models.Q(status="waiting"), name="counterpush_one_waiting"
            ),
        ]
        indexes = [
            # The drain: due waiting pushes.
            models.Index(
                fields=["not_before", "id"], condition=models.Q(status="waiting"), name="counterpush_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Push of {self.counter} ({self.status})"
