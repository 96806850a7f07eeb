from __future__ import annotations

from rest_framework import serializers

from sync.models import BackfillRun, WixSite


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
