"""``/api/campaigns/``: sale-start campaigns for scripts: list, read, send now, cancel.

The same services and permissions as the admin: reading needs
``notifications.view_salestartcampaign``, *send now* ``send_campaign``, *cancel*
``cancel_campaign``; each action is recorded in the campaign's history.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications.models import SaleStartCampaign
from notifications.services.campaigns import campaign_cancel, campaign_send_now
from sync.api.schema import answers


class CampaignSerializer(serializers.ModelSerializer):
    event_title = serializers.CharField(source="event.title", default="", read_only=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = SaleStartCampaign
        fields = [
            "id",
            "site",
            "event_wix_id",
            "event_title",
            "sale_start",
            "sale_end",
            "ticket_definition_wix_ids",
            "status",
            "blocked_reason",
            "cancelled_reason",
            "recipients",
            "released_at",
            "progress",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "integer"}})
    def get_progress(self, obj: SaleStartCampaign) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in obj.notifications.values_list("status", flat=True):
            counts[status] = counts.get(status, 0) + 1
        return counts


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class SendNowResultSerializer(CampaignSerializer):
    queued = serializers.BooleanField(read_only=True)

    class Meta(CampaignSerializer.Meta):
        fields = ["queued", *CampaignSerializer.Meta.fields]
        read_only_fields = fields


class CancelResultSerializer(CampaignSerializer):
    cancelled = serializers.BooleanField(read_only=True)

    class Meta(CampaignSerializer.Meta):
        fields = ["cancelled", *CampaignSerializer.Meta.fields]
        read_only_fields = fields


class CampaignPermissions(permissions.DjangoModelPermissions):
    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: APIView) -> bool:
        needed = {"send_now": "notifications.send_campaign", "cancel": "notifications.cancel_campaign"}
        name = getattr(view, "action", None)
        if name in needed:
            return bool(request.user and request.user.has_perm(needed[name]))
        return super().has_permission(request, view)


@extend_schema_view(
    list=extend_schema(
        summary="List sale-start campaigns",
        tags=["campaigns"],
        parameters=[
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                enum=[value for value, _ in SaleStartCampaign.Status.choices],
                description="Only campaigns in this status.",
            )
        ],
        responses=answers({200: CampaignSerializer(many=True)}),
    ),
    retrieve=extend_schema(
        summary="A campaign and its progress",
        tags=["campaigns"],
        responses=answers({200: CampaignSerializer}, invalid=False, missing=True),
    ),
    send_now=extend_schema(
        summary="Send a campaign now",
        description="Queues the send as staff's *Send now* does; `queued` is false where the "
        "campaign cannot be sent (already sent, cancelled).",
        tags=["campaigns"],
        request=None,
        responses=answers({200: SendNowResultSerializer}, invalid=False, missing=True, body=True),
    ),
    cancel=extend_schema(
        summary="Cancel a campaign",
        tags=["campaigns"],
        request=CancelSerializer,
        responses=answers({200: CancelResultSerializer}, missing=True, body=True),
    ),
)
class CampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = SaleStartCampaign.objects.select_related("event").order_by("-sale_start")
    serializer_class = CampaignSerializer
    permission_classes = [permissions.IsAdminUser, CampaignPermissions]
    # Every request body of the API is JSON.
    parser_classes = [JSONParser]

    def get_queryset(self) -> Any:
        rows = super().get_queryset()
        status = self.request.query_params.get("status")
        if status and status not in SaleStartCampaign.Status.values:
            raise serializers.ValidationError({"status": [f"Not one of {SaleStartCampaign.Status.values}."]})
        return rows.filter(status=status) if status else rows

    @action(detail=True, methods=["post"])
    def send_now(self, request: Request, pk: str | None = None) -> Response:
        campaign = self.get_object()
        done = campaign_send_now(campaign_ids=[campaign.pk], by=request.user)
        campaign.refresh_from_db()
        return Response({"queued": bool(done), **self.get_serializer(campaign).data})

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        campaign = self.get_object()
        body = CancelSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        reason = body.validated_data.get("reason") or "cancelled through the API"
        done = campaign_cancel(campaign_ids=[campaign.pk], by=request.user, reason=reason)
        campaign.refresh_from_db()
        return Response({"cancelled": bool(done), **self.get_serializer(campaign).data})
