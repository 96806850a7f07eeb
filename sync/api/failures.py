"""What failed, and acting on it: dead letters (retry), failed webhook deliveries (replay),
failed backfills. Lists are read with the view permissions; retry and replay need the
operators' permissions and are recorded in each row's history, as the admin's actions are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sync.api.permissions import STAFF, ViewPermissions, needs
from sync.api.schema import answers
from sync.api.serializers import (
    BackfillRunSerializer,
    DeadLetterFilterSerializer,
    DeadLetterSerializer,
    FailedDeliverySerializer,
    FailureFilterSerializer,
    IdsSerializer,
    QueuedSerializer,
)
from sync.models import BackfillRun, OutboundWork, WebhookDelivery
from sync.selectors.names import Key, entity_names
from sync.services.push import work_retry
from sync.services.webhook_handlers import webhook_replay


class _FailureList(generics.ListAPIView):
    """A page of failed rows, newest first, filtered by ``?site=&since=`` (and more per list)."""

    permission_classes = [STAFF, ViewPermissions]
    filter_serializer: type[FailureFilterSerializer] = FailureFilterSerializer
    # The row's field ``since`` compares with.
    since_field = "updated_at"

    def filters(self) -> dict[str, Any]:
        serializer = self.filter_serializer(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        since = data.pop("since", None)
        if since is not None:
            data[f"{self.since_field}__gte"] = since
        return data

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().filter(**self.filters())

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        names = entity_names(self.name_keys(page))
        serializer = self.get_serializer(
            page, many=True, context={**self.get_serializer_context(), "names": names}
        )
        return self.get_paginated_response(serializer.data)

    def name_keys(self, page: Sequence[Any]) -> Sequence[Key]:
        return []


@extend_schema(
    summary="Dead letters: outbound work that gave up",
    description="Filter by site, system, entity type and since (the time it gave up, or later).",
    tags=["failures"],
    parameters=[DeadLetterFilterSerializer],
    responses=answers({200: DeadLetterSerializer(many=True)}),
)
class DeadLetterList(_FailureList):
    """Outbound work that gave up, newest first (``?site=&system=&entity_type=&since=``)."""

    queryset = (
        OutboundWork.objects.filter(status=OutboundWork.Status.DEAD)
        .select_related("system", "retried_by")
        .order_by("-updated_at", "-pk")
    )
    serializer_class = DeadLetterSerializer
    filter_serializer = DeadLetterFilterSerializer

    def name_keys(self, page: Sequence[Any]) -> Sequence[Key]:
        return [(work.site_id, work.entity_type, work.wix_id) for work in page]


@extend_schema(
    summary="Failed webhook deliveries",
    description="Deliveries that could not be processed after their retries; filter by site and since "
    "(the time Wix delivered it, or later).",
    tags=["failures"],
    parameters=[FailureFilterSerializer],
    responses=answers({200: FailedDeliverySerializer(many=True)}),
)
class FailedDeliveryList(_FailureList):
    """Webhook deliveries that failed after their retries, newest first (``?site=&since=``)."""

    queryset = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.FAILED).order_by(
        "-received_at", "-pk"
    )
    serializer_class = FailedDeliverySerializer
    since_field = "received_at"

    def name_keys(self, page: Sequence[Any]) -> Sequence[Key]:
        return [(delivery.site_id or 0, None, delivery.entity_id) for delivery in page]


@extend_schema(
    summary="Failed backfills",
    description="Backfills that failed or finished with errors; filter by site and since (created then or "
    "later). Resume them in the admin, or start a new one.",
    tags=["failures"],
    parameters=[FailureFilterSerializer],
    responses=answers({200: BackfillRunSerializer(many=True)}),
)
class FailedBackfillList(_FailureList):
    """Backfills that failed or finished with errors, newest first (``?site=&since=``)."""

    queryset = BackfillRun.objects.filter(status__in=BackfillRun.RESUMABLE_STATUSES).order_by(
        "-created_at", "-pk"
    )
    serializer_class = BackfillRunSerializer
    since_field = "created_at"


class _IdsAction(APIView):
    parser_classes = [JSONParser]

    def ids(self, request: Request) -> list[int]:
        serializer = IdsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return list(dict.fromkeys(serializer.validated_data["ids"]))


class DeadLetterRetry(_IdsAction):
    """Retry dead letters now: ``{"ids": [...]}``."""

    permission_classes = [STAFF, needs("sync.retry_work")]

    @extend_schema(
        summary="Retry dead letters (or hurry waiting work) now",
        description="Fix the cause first (the entity on Wix, a mapping, the system). Rows that are "
        "neither dead nor waiting are left alone. Each retried row's history says who asked.",
        tags=["failures"],
        request=IdsSerializer,
        responses=answers({200: QueuedSerializer}, body=True),
    )
    def post(self, request: Request) -> Response:
        ids = self.ids(request)
        queued = work_retry(work_ids=ids, by=request.user, reason="staff: API retry")
        return Response({"requested": len(ids), "queued": queued})


class FailedDeliveryReplay(_IdsAction):
    """Replay failed webhook deliveries: ``{"ids": [...]}``."""

    permission_classes = [STAFF, needs("sync.replay_webhook")]

    @extend_schema(
        summary="Replay failed (or stuck) webhook deliveries",
        description="Processed deliveries are left alone. Each replayed row's history says who asked.",
        tags=["failures"],
        request=IdsSerializer,
        responses=answers({200: QueuedSerializer}, body=True),
    )
    def post(self, request: Request) -> Response:
        ids = self.ids(request)
        queued = webhook_replay(delivery_ids=ids, by=request.user, reason="staff: API replay")
        return Response({"requested": len(ids), "queued": queued})
