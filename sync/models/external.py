"""The external ticketing systems the mirrors are pushed to, and how.

Secrets are never stored: ``auth_secret_env`` names the environment variable holding
the token or password.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from portal.models import Job, TimestampedModel
from portal.secrets import SecretName
from sync.domain.endpoints import endpoint_path_check
from sync.domain.entity_types import EntityType
from sync.domain.mapping import Transform, mapping_validate, spec_of


class DriftAction(models.TextChoices):
    REPORT = "report", "Keep them, report only"
    OVERWRITE = "overwrite", "Overwrite them (push the Wix values again)"


class ExternalSystem(TimestampedModel):
    class Kind(models.TextChoices):
        GENERIC_REST = "generic_rest", "Generic REST"
        PRETIX = "pretix", "pretix"

    class AuthType(models.TextChoices):
        NONE = "none", "None"
        BEARER = "bearer", "Bearer token"
        BASIC = "basic", "Basic (user + password)"
        HEADER = "header", "Custom header"
        TOKEN = "token", "API token (pretix: Authorization: Token …)"

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.GENERIC_REST)
    is_active = models.BooleanField(default=True)
    base_url = models.URLField("Base URL")
    auth_type = models.CharField(max_length=16, choices=AuthType.choices, default=AuthType.BEARER)
    auth_header = models.CharField(
        "Header name", max_length=100, blank=True, help_text="For a custom header, e.g. X-Api-Key."
    )
    auth_username = models.CharField("User name", max_length=150, blank=True, help_text="For basic auth.")
    auth_secret_env = models.CharField(
        "Secret variable",
        max_length=100,
        blank=True,
        validators=[SecretName("EXTERNAL_")],
        help_text="Environment variable holding the token or password, e.g. EXTERNAL_TICKETING_TOKEN.",
    )
    timeout = models.FloatField("Timeout (seconds)", default=10.0)
    organizer = models.SlugField(
        "pretix organizer", max_length=100, blank=True, help_text="pretix only: the organizer's short form."
    )
    default_currency = models.CharField(
        max_length=3,
        default="EUR",
        help_text="pretix only: a new event's currency when neither the mapping nor its tickets name one.",
    )
    drift_action = models.CharField(
        "Fields changed by hand",
        max_length=16,
        choices=DriftAction.choices,
        default=DriftAction.REPORT,
        help_text="What reconciliation does when it finds a field changed in the system since the last push "
        "(pretix only): keep the hand edit and report it, or push the Wix value again.",
    )

    # A run of failed calls (timeouts, 5xx, 429) is an incident: staff hear of its start, of a
    # pause when it goes on, and of its end (sync.services.alerts).
    failure_streak = models.PositiveIntegerField(default=0, help_text="Failed calls in a row.")
    failing_since = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Paused after too many failures in a row: nothing is sent until resumed.",
    )

    class Meta:
        ordering = ["name"]
        permissions = [
            ("test_connection", "Can test a system's connection"),
            ("resume_system", "Can resume a paused system"),
            # Where the secret is sent and which secret: the two fields that could carry a
            # credential to a host of someone's choosing.
            ("change_system_endpoint", "Can change a system's base URL and secret variable"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind == self.Kind.PRETIX:
            errors = {}
            if not self.organizer:
                errors["organizer"] = "A pretix system needs its organizer's short form."
            if self.auth_type != self.AuthType.TOKEN:
                errors["auth_type"] = "pretix takes an API token."
            if not self.auth_secret_env:
                errors["auth_secret_env"] = "Name the variable holding the pretix API token."  # noqa: S105
            if errors:
                raise ValidationError(errors)


class ExternalEndpoint(TimestampedModel):
    """Where one entity type is created, updated and deleted on a generic REST system.

    Update and delete paths may use ``{external_id}``, replaced by the link's external id,
    URL-quoted; nothing else is substituted.
    """

    class Method(models.TextChoices):
        POST = "POST"
        PUT = "PUT"
        PATCH = "PATCH"
        DELETE = "DELETE"

    system = models.ForeignKey(ExternalSystem, on_delete=models.CASCADE, related_name="endpoints")
    entity_type = models.CharField(max_length=32, choices=EntityType.choices)
    create_method = models.CharField(max_length=8, choices=Method.choices, default=Method.POST)
    create_path = models.CharField(max_length=300)
    update_method = models.CharField(max_length=8, choices=Method.choices, default=Method.PUT)
    update_path = models.CharField(max_length=300)
    delete_method = models.CharField(max_length=8, choices=Method.choices, default=Method.DELETE)
    delete_path = models.CharField(max_length=300)
    id_path = models.CharField(
        "Id in the create response", max_length=200, default="id", help_text="Dotted path, e.g. data.id."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["system", "entity_type"], name="endpoint_unique_system_type"),
        ]

    def __str__(self) -> str:
        return f"{self.system} {self.get_entity_type_display()} endpoints"

    def clean(self) -> None:
        errors = {
            name: problem
            for name, takes_id in (("create_path", False), ("update_path", True), ("delete_path", True))
            if (problem := endpoint_path_check(getattr(self, name), takes_id=takes_id))
        }
        if errors:
            raise ValidationError(errors)


class FieldMapping(TimestampedModel):
    """One Wix field path mapped, through a transform, to a field of the external payload."""

    Transform = Transform

    system = models.ForeignKey(ExternalSystem, on_delete=models.CASCADE, related_name="mappings")
    entity_type = models.CharField(max_length=32, choices=EntityType.choices)
    source_path = models.CharField(
        max_length=300,
        blank=True,
        help_text="Dotted Wix path; [0] picks a list item, [*] maps every item "
        "(pricingMethod.pricingOptions.optionDetails[*].price.value). Empty for a constant or template.",
    )
    target_field = models.CharField(
        max_length=300, help_text="Dotted path in the payload; options[*].price builds one object per item."
    )
    transform = models.CharField(max_length=16, choices=Transform.choices, default=Transform.TEXT)
    argument = models.TextField(
        blank=True,
        help_text='Enum map: a JSON object ({"true": false}). Template: text with {wix.path} fields. '
        "Constant: a JSON value. HTML to Markdown: optionally an HTML template around the field, "
        "e.g. <p><strong>{name}</strong></p>{body}.",
    )
    required = models.BooleanField(
        default=False, help_text="Missing source value: error instead of omitting."
    )
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["system", "entity_type", "order", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "entity_type", "target_field"], name="mapping_unique_target_field"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_path or self.get_transform_display()} → {self.target_field}"

    def clean(self) -> None:
        mapping_validate(entity_type=self.entity_type, spec=spec_of(self))


class ExternalLink(TimestampedModel):
    """A Wix entity's record in an external system. ``external_id`` is written once, at create.

    Later pushes only record what was pushed (hash, revision, time); staff repair a wrong
    id through the admin's repair page, which leaves a :class:`LinkRepair` record.
    """

    system = models.ForeignKey(ExternalSystem, on_delete=models.CASCADE, related_name="links")
    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="links")
    entity_type = models.CharField(max_length=32, choices=EntityType.choices)
    wix_id = models.CharField("Wix id", max_length=64)
    external_id = models.CharField("External id", max_length=200)
    last_payload_hash = models.CharField(max_length=64, blank=True)
    last_pushed_revision = models.BigIntegerField(null=True, blank=True)
    last_pushed_at = models.DateTimeField(null=True, blank=True)
    # What was sent last (the hash alone cannot say which field a hand edit changed since).
    last_payload = models.JSONField(null=True, blank=True)
    external_facts = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the system decided itself, which the portal respects (pretix: an event's currency).",
    )
    drift = models.JSONField(
        default=dict,
        blank=True,
        help_text="Fields changed in the system by hand since the last push: {field: {pushed, found}}.",
    )
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted in the external system.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["system", "entity_type", "wix_id"], name="link_unique_wix_side"),
            models.UniqueConstraint(
                fields=["system", "entity_type", "external_id"], name="link_unique_external_side"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_entity_type_display()} {self.wix_id} ↔ {self.system} {self.external_id}"


class LinkRepair(TimestampedModel):
    """Audit: staff changed a link's external id."""

    link = models.ForeignKey(ExternalLink, on_delete=models.CASCADE, related_name="repairs")
    old_external_id = models.CharField(max_length=200)
    new_external_id = models.CharField(max_length=200)
    reason = models.TextField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    def __str__(self) -> str:
        return f"{self.link}: {self.old_external_id} → {self.new_external_id}"


class OutboundWork(Job):
    """One unit of outbound work: bring one entity up to date in one system (a job).

    The row exists before any request goes out. At most one pending and one in-flight
    row per entity and system (the constraints below): a second change while one is
    pending joins it, and a worker cannot claim an entity another worker is pushing.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_FLIGHT = "in_flight", "In flight"
        DONE = "done", "Done"
        DEAD = "dead", "Dead letter"

    WAITING, CLAIMED, DEAD = Status.PENDING, Status.IN_FLIGHT, Status.DEAD
    RETRYABLE = (Status.PENDING,)  # staff may hurry a row waiting for its next retry

    class Trigger(models.TextChoices):
        BACKFILL = "backfill", "Backfill"
        WEBHOOK = "webhook", "Webhook"
        RESYNC = "resync", "Manual resync"
        RECONCILE = "reconcile", "Reconciliation"
        RETRY = "retry", "Staff retry"

    system = models.ForeignKey(ExternalSystem, on_delete=models.CASCADE, related_name="work")
    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="+")
    entity_type = models.CharField(max_length=32, choices=EntityType.choices)
    wix_id = models.CharField("Wix id", max_length=64)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    outcome = models.CharField(max_length=16, blank=True, help_text="created, updated, deleted, unchanged, …")
    changed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the change happened on Wix (webhooks): the lag starts here."
    )
    # Machine-readable facts of the last error that the admin offers fixes for
    # (pretix: the slug another event already has).
    error_details = models.JSONField(default=dict, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "outbound work"
        permissions = [
            ("resync", "Can resync entities to external systems"),
            ("retry_work", "Can retry outbound work and dead letters"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "entity_type", "wix_id"],
                condition=models.Q(status="pending"),
                name="work_one_pending_per_entity",
            ),
            models.UniqueConstraint(
                fields=["system", "entity_type", "wix_id"],
                condition=models.Q(status="in_flight"),
                name="work_one_in_flight_per_entity",
            ),
        ]
        indexes = [
            # The drain: pending work, oldest (lowest id) first.
            models.Index(fields=["id"], condition=models.Q(status="pending"), name="work_pending_idx"),
            # The sweep: due pending work.
            models.Index(fields=["status", "not_before"], name="work_status_due_idx"),
            # Per-entity timeline.
            models.Index(fields=["entity_type", "wix_id"], name="work_entity_idx"),
            # The console: pushes finished in the last hour / day (lag, throughput).
            models.Index(fields=["finished_at"], condition=models.Q(status="done"), name="work_done_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_trigger_display()} {self.entity_type} {self.wix_id} → {self.system} ({self.status})"
        )


class SyncLog(models.Model):
    """One HTTP call to an external system (an attempt of a unit of work)."""

    class Action(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"

    class Status(models.TextChoices):
        SENDING = "sending", "Sending"
        SUCCESS = "success", "Success"
        RETRYABLE = "retryable", "Failed, will retry"
        PERMANENT = "permanent", "Failed permanently"
        # The worker died during the call: the target may or may not have applied it.
        INTERRUPTED = "interrupted", "Interrupted (worker died; outcome unknown)"

    work = models.ForeignKey(OutboundWork, on_delete=models.CASCADE, related_name="attempts_log")
    system = models.ForeignKey(ExternalSystem, on_delete=models.CASCADE, related_name="+")
    entity_type = models.CharField(max_length=32, choices=EntityType.choices)
    wix_id = models.CharField("Wix id", max_length=64)
    trigger = models.CharField(max_length=16, choices=OutboundWork.Trigger.choices)
    action = models.CharField(max_length=16, choices=Action.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SENDING)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    request_excerpt = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    note = models.TextField(blank=True, help_text="What the adapter found and did, e.g. a record recreated.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Admin list: newest first, filtered by system / status.
            models.Index(fields=["-created_at"], name="synclog_created_idx"),
            models.Index(fields=["system", "status", "-created_at"], name="synclog_system_status_idx"),
            # Per-entity timeline.
            models.Index(fields=["entity_type", "wix_id"], name="synclog_entity_idx"),
            # Retention: the oldest calls that still hold their request or response.
            models.Index(
                fields=["created_at"],
                condition=~models.Q(request_excerpt="") | ~models.Q(response_excerpt=""),
                name="synclog_body_kept_idx",
            ),
        ]

    def __str__(self) -> str:
        result = self.http_status or self.status
        return f"{self.get_action_display()} {self.entity_type} {self.wix_id} → {result}"
