"""What the API reads and answers. Serializers validate and shape data; the views call services."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from sync.models import BackfillRun, EntityType, ExternalSystem, OutboundWork, WebhookDelivery, WixSite
from sync.selectors.names import EntityName

# Ids are 64-bit in every database the portal runs on; larger numbers are refused (400).
MAX_ID = 2**63 - 1
# One request names at most this many rows (ids to retry, Wix ids to resync).
MAX_IDS = 1000


class BackfillRunSerializer(serializers.ModelSerializer):
    site = serializers.PrimaryKeyRelatedField(queryset=WixSite.objects.filter(is_active=True))
    event_wix_id = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")

    class Meta:
        model = BackfillRun
        fields = [
            "id",
            "site",
            "event_wix_id",
            "trigger",
            "status",
            "started_at",
            "finished_at",
            "fetched",
            "created",
            "updated",
            "unchanged",
            "failed",
            "errors",
            "created_at",
        ]
        read_only_fields = [f for f in fields if f not in ("site", "event_wix_id")]
        # "One active run per scope" is answered by the service with the active run (200),
        # not refused by DRF's validator built from the database constraint.
        validators: list = []


# --- errors (for the schema) -------------------------------------------------------------------
class DetailSerializer(serializers.Serializer):
    """401 (no or a bad token), 403 (a role without the permission), 404."""

    detail = serializers.CharField()


# --- failures ------------------------------------------------------------------------------------
class FailureFilterSerializer(serializers.Serializer):
    site = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Only this Wix site (its id in the portal)."
    )
    since = serializers.DateTimeField(
        required=False, help_text="Only failures from this time on (ISO 8601, e.g. 2026-05-01T00:00:00Z)."
    )


class DeadLetterFilterSerializer(FailureFilterSerializer):
    system = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Only this external system."
    )
    entity_type = serializers.ChoiceField(choices=EntityType.choices, required=False)


class _NamedMixin(serializers.Serializer):
    """The Wix names of a row's entity, looked up once per page (``context["names"]``)."""

    name = serializers.SerializerMethodField(help_text="The entity's Wix name; empty if not mirrored.")
    event_name = serializers.SerializerMethodField(
        help_text="The event a policy or ticket definition belongs to."
    )

    def _entity(self, obj: Any) -> EntityName | None:
        names: dict[tuple[int, str], EntityName] = self.context.get("names", {})
        return names.get((obj.site_id or 0, self._wix_id(obj)))

    def _wix_id(self, obj: Any) -> str:
        return str(obj.wix_id)

    def get_name(self, obj: Any) -> str:
        entity = self._entity(obj)
        return entity.name if entity else ""

    def get_event_name(self, obj: Any) -> str:
        entity = self._entity(obj)
        return entity.event if entity else ""


class DeadLetterSerializer(_NamedMixin, serializers.ModelSerializer):
    system_name = serializers.CharField(source="system.name", read_only=True)
    retried_by = serializers.CharField(
        source="retried_by.username", read_only=True, allow_null=True, help_text="Who last retried it."
    )

    class Meta:
        model = OutboundWork
        fields = [
            "id",
            "system",
            "system_name",
            "site",
            "entity_type",
            "wix_id",
            "name",
            "event_name",
            "trigger",
            "outcome",
            "attempts",
            "last_error",
            "error_details",
            "retried_by",
            "retry_reason",
            "created_at",
            "updated_at",
            "finished_at",
        ]
        read_only_fields = fields


class FailedDeliverySerializer(_NamedMixin, serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "site",
            "wix_event_id",
            "event_type",
            "entity_id",
            "name",
            "event_name",
            "status",
            "outcome",
            "attempts",
            "last_error",
            "retry_reason",
            "received_at",
            "processed_at",
        ]
        read_only_fields = fields

    def _wix_id(self, obj: Any) -> str:
        return str(obj.entity_id)


class IdsSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=MAX_IDS,
        help_text=f"The rows' ids (at most {MAX_IDS}).",
    )


class QueuedSerializer(serializers.Serializer):
    requested = serializers.IntegerField(help_text="How many ids were sent.")
    queued = serializers.IntegerField(
        help_text="How many were queued again (the others were not failed, or are not known)."
    )


# --- resync and dry run -------------------------------------------------------------------------
class EntitySelectionSerializer(serializers.Serializer):
    site = serializers.PrimaryKeyRelatedField(
        queryset=WixSite.objects.filter(is_active=True), help_text="The Wix site (its id in the portal)."
    )
    entity_type = serializers.ChoiceField(
        choices=EntityType.choices,
        default=EntityType.EVENT,
        help_text="An event brings its policies and ticket definitions along.",
    )
    wix_ids = serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=MAX_IDS,
        required=False,
        default=list,
        help_text="Wix ids of that type; none: every one the site has.",
    )
    systems = serializers.PrimaryKeyRelatedField(
        queryset=ExternalSystem.objects.filter(is_active=True),
        many=True,
        required=False,
        help_text="Only these external systems; none: every active one.",
    )


class ResyncResultSerializer(serializers.Serializer):
    entities = serializers.IntegerField(help_text="Entities resynced (an event's children included).")
    queued = serializers.IntegerField(help_text="New pushes queued (pending ones are joined).")


class DryRunRowSerializer(serializers.Serializer):
    system = serializers.IntegerField()
    system_name = serializers.CharField()
    site = serializers.IntegerField()
    entity_type = serializers.ChoiceField(choices=EntityType.choices)
    wix_id = serializers.CharField()
    name = serializers.CharField()
    event_name = serializers.CharField()
    action = serializers.CharField(
        help_text="create, update or delete; unchanged or missing (no call); error."
    )
    external_id = serializers.CharField(help_text="The linked record's id; empty before a create.")
    payload = serializers.JSONField(allow_null=True, help_text="What the push would send; null: no call.")
    error = serializers.CharField(help_text="Why no payload could be made (action error).")


class DryRunSerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Rows per action.")
    rows = DryRunRowSerializer(many=True)
