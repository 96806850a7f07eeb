"""Where a site's subscribers live outside the portal: a Mailchimp audience or a REST API.

Configuration only (no flow): the source classes in ``notifications.sources`` read these rows
and the clients in ``notifications.clients`` make the calls. Secrets are never stored: a row
names the environment variable holding its key, and only a ``MARKETING_`` one
(``portal.secrets``), so that staff who may edit a source cannot send the Wix key or a
ticketing token to a URL of their choosing.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from portal.models import TimestampedModel
from portal.secrets import SecretName

# A Mailchimp data centre ("us6"): only letters then digits, so the key can only go to
# https://<dc>.api.mailchimp.com.
SERVER_PREFIX_RE = re.compile(r"^[a-z]{2,10}[0-9]{1,4}$")
# A dotted path into a JSON document: names and list indexes, e.g. "data.items" or
# "profile.0.email", optionally written JSONPath-style from the root ("$.data.items").
PATH_RE = re.compile(r"^(\$\.)?[A-Za-z0-9_@-]+(\.[A-Za-z0-9_@-]+)*$")
path_validator = RegexValidator(PATH_RE, "A dotted path such as data.items or profile.email.")


class MailchimpSource(TimestampedModel):
    """One Mailchimp audience (a "list" in the API) whose members may be told of sale starts.

    Who is opted in for an event is decided by the rules (:class:`MailchimpRule`): members
    with status ``subscribed`` that carry the tag or interest chosen for that event, or for
    all events; a rule may also take every subscribed member. With no rule, nobody is.
    """

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="mailchimp_sources")
    name = models.CharField(max_length=120, help_text="Shown to staff, e.g. Spring newsletter.")
    is_active = models.BooleanField(default=True, help_text="Off: this audience is not read at all.")
    server_prefix = models.CharField(
        "Server prefix",
        max_length=16,
        blank=True,
        validators=[RegexValidator(SERVER_PREFIX_RE, "A data centre such as us6.")],
        help_text="The data centre in the API URL (https://us6.api.mailchimp.com): blank takes "
        "it from the end of the API key (…-us6).",
    )
    list_id = models.CharField(
        "Audience id",
        max_length=32,
        validators=[RegexValidator(r"^[A-Za-z0-9]+$", "Letters and digits only.")],
        help_text="Audience → Settings → Audience name and defaults → Audience ID.",
    )
    api_key_env = models.CharField(
        "API key variable",
        max_length=100,
        validators=[SecretName("MARKETING_")],
        help_text="Environment variable holding the API key, e.g. MARKETING_MAILCHIMP_API_KEY.",
    )
    write_back_unsubscribes = models.BooleanField(
        default=True,
        help_text="An unsubscribe from a sale-start email also unsubscribes the member from this audience.",
    )

    class Meta:
        ordering = ["site", "name"]
        permissions = [
            ("test_mailchimp_connection", "Can test a Mailchimp source's connection"),
            # Where the key is sent and which key: the fields that could carry a credential
            # to someone else.
            ("change_mailchimp_endpoint", "Can change a Mailchimp source's server and key variable"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="mailchimp_source_site_name_unique"),
        ]

    def __str__(self) -> str:
        return f"Mailchimp: {self.name}"


class MailchimpRule(TimestampedModel):
    """Which members of the audience are opted in for one event, or for all events."""

    class Kind(models.TextChoices):
        TAG = "tag", "Members with a tag"
        INTEREST = "interest", "Members in an interest group"
        EVERYONE = "everyone", "Every subscribed member"

    source = models.ForeignKey(MailchimpSource, on_delete=models.CASCADE, related_name="rules")
    event_wix_id = models.CharField(
        "Wix event id",
        max_length=64,
        blank=True,
        help_text="Blank: the rule opts members in for all events.",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.TAG)
    tag = models.CharField(max_length=100, blank=True, help_text="The tag's name, as shown in Mailchimp.")
    interest_category_id = models.CharField(
        "Interest category (group title) id",
        max_length=32,
        blank=True,
        validators=[RegexValidator(r"^[A-Za-z0-9]+$", "Letters and digits only.")],
    )
    interest_id = models.CharField(
        "Interest (group name) id",
        max_length=32,
        blank=True,
        validators=[RegexValidator(r"^[A-Za-z0-9]+$", "Letters and digits only.")],
        help_text="“Test connection” lists the audience's tags and interests with their ids.",
    )

    class Meta:
        ordering = ["source", "event_wix_id", "kind"]
        indexes = [
            # The rules for one event (and the all-events ones, event_wix_id = "") of a source.
            models.Index(fields=["source", "event_wix_id"], name="mailchimp_rule_event_idx"),
        ]

    def __str__(self) -> str:
        target = f"event {self.event_wix_id}" if self.event_wix_id else "all events"
        if self.kind == self.Kind.TAG:
            return f"tag {self.tag!r} → {target}"
        if self.kind == self.Kind.INTEREST:
            return f"interest {self.interest_id} → {target}"
        return f"every subscribed member → {target}"

    def clean(self) -> None:
        errors = {}
        if self.kind == self.Kind.TAG and not self.tag.strip():
            errors["tag"] = "Name the tag."
        if self.kind == self.Kind.INTEREST:
            if not self.interest_category_id:
                errors["interest_category_id"] = "Give the interest category id."
            if not self.interest_id:
                errors["interest_id"] = "Give the interest id."
        if errors:
            raise ValidationError(errors)


class RestSource(TimestampedModel):
    """A JSON API listing subscribers: staff say where the list, the address, the name, the
    status and the events are in its answers, and how it pages."""

    class Auth(models.TextChoices):
        NONE = "none", "None"
        BEARER = "bearer", "Bearer token"
        BASIC = "basic", "Basic (user + password)"
        HEADER = "header", "Custom header"

    class Paging(models.TextChoices):
        NONE = "none", "One answer holds everyone"
        NEXT_LINK = "next_link", "A link to the next page in the answer"
        OFFSET = "offset", "Offset and limit parameters"
        PAGE = "page", "Page number parameter (from 1)"

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="rest_sources")
    name = models.CharField(max_length=120)
    is_active = models.BooleanField(default=True)
    url = models.URLField("URL", help_text="GET this URL to list subscribers (HTTPS in production).")
    auth_kind = models.CharField(max_length=16, choices=Auth.choices, default=Auth.BEARER)
    auth_header = models.CharField(
        "Header name", max_length=100, blank=True, help_text="For a custom header, e.g. X-Api-Key."
    )
    auth_username = models.CharField("User name", max_length=150, blank=True, help_text="For basic auth.")
    auth_secret_env = models.CharField(
        "Secret variable",
        max_length=100,
        blank=True,
        validators=[SecretName("MARKETING_")],
        help_text="Environment variable holding the token or password, e.g. MARKETING_CRM_TOKEN.",
    )
    items_path = models.CharField(
        "List path",
        max_length=200,
        blank=True,
        validators=[path_validator],
        help_text="Where the list of subscribers is in an answer, e.g. data.subscribers; blank: "
        "the answer is the list.",
    )
    email_path = models.CharField(max_length=200, default="email", validators=[path_validator])
    name_path = models.CharField(max_length=200, blank=True, validators=[path_validator])
    status_path = models.CharField(
        max_length=200,
        blank=True,
        validators=[path_validator],
        help_text="Blank: everyone listed is subscribed.",
    )
    subscribed_values = models.CharField(
        max_length=200,
        default="subscribed",
        help_text="Comma-separated status values meaning subscribed (compared without case).",
    )
    unsubscribed_values = models.CharField(
        max_length=200,
        default="unsubscribed",
        blank=True,
        help_text="Comma-separated status values meaning unsubscribed: they get nothing, whatever "
        "another source says. Other values are neither.",
    )
    event_ids_path = models.CharField(
        "Event ids path",
        max_length=200,
        blank=True,
        validators=[path_validator],
        help_text="Where an item lists the Wix event ids it is subscribed to (a list or one id). "
        "Blank: everyone subscribed is opted in for all events.",
    )
    all_events_marker = models.CharField(
        max_length=50,
        default="*",
        help_text="An event id meaning all events (an item listing it is opted in for every event).",
    )
    paging = models.CharField(max_length=16, choices=Paging.choices, default=Paging.NONE)
    next_path = models.CharField(
        "Next link path",
        max_length=200,
        blank=True,
        validators=[path_validator],
        help_text="Next-link paging: where the next page's URL is, e.g. links.next (same host only).",
    )
    offset_param = models.CharField(max_length=50, default="offset", help_text="Offset paging.")
    limit_param = models.CharField(max_length=50, default="limit", help_text="Offset and page paging.")
    page_param = models.CharField(max_length=50, default="page", help_text="Page paging.")
    page_size = models.PositiveIntegerField(default=100)
    total_path = models.CharField(
        max_length=200,
        blank=True,
        validators=[path_validator],
        help_text="Offset and page paging: where the total count is; blank: page until a short page.",
    )

    class Meta:
        ordering = ["site", "name"]
        permissions = [
            ("test_rest_connection", "Can test a REST source's connection"),
            ("change_rest_endpoint", "Can change a REST source's URL, auth and secret variable"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="rest_source_site_name_unique"),
        ]

    def __str__(self) -> str:
        return f"REST: {self.name}"

    def clean(self) -> None:
        errors = {}
        if self.auth_kind != self.Auth.NONE and not self.auth_secret_env:
            errors["auth_secret_env"] = "Name the variable holding the secret."  # noqa: S105
        if self.auth_kind == self.Auth.HEADER and not self.auth_header:
            errors["auth_header"] = "Name the header."
        if self.paging == self.Paging.NEXT_LINK and not self.next_path:
            errors["next_path"] = "Say where the next page's link is."
        if self.page_size == 0:
            errors["page_size"] = "At least 1."
        if not [v for v in self.subscribed_values.split(",") if v.strip()]:
            errors["subscribed_values"] = "At least one value."
        if errors:
            raise ValidationError(errors)
