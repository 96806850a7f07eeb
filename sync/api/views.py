"""Start work: a backfill, a resync of entities, or a dry run of one (what a push would send)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sync.api.permissions import STAFF, ViewPermissions, needs
from sync.api.schema import answers
from sync.api.serializers import (
    BackfillRunSerializer,
    DryRunSerializer,
    EntitySelectionSerializer,
    ResyncResultSerializer,
)
from sync.models import BackfillRun
from sync.selectors.names import entity_names
from sync.services.backfill import backfill_start
from sync.services.resync import Selection, entities_select, resync_plan, resync_selection


@extend_schema_view(
    list=extend_schema(
        summary="List backfills", tags=["backfills"], responses=answers({200: BackfillRunSerializer})
    ),
    retrieve=extend_schema(
        summary="A backfill and its progress",
        tags=["backfills"],
        responses=answers({200: BackfillRunSerializer}, invalid=False, missing=True),
    ),
    create=extend_schema(
        summary="Start a backfill of a site or one event",
        description="A scope already being backfilled answers 200 with that run instead of 201.",
        tags=["backfills"],
        responses=answers(
            {
                201: OpenApiResponse(BackfillRunSerializer, description="Started."),
                200: OpenApiResponse(BackfillRunSerializer, description="Already running: that run."),
            },
            body=True,
        ),
    ),
)
class BackfillRunViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Start a backfill (POST ``{"site": id, "event_wix_id": "..."}``) and watch its progress.

    Starting a scope that is already queued or running answers 200 with that run instead
    of 201 with a new one.
    """

    queryset = BackfillRun.objects.select_related("site").order_by("-created_at")
    serializer_class = BackfillRunSerializer
    permission_classes = [STAFF, ViewPermissions]
    # Every request body of the API is JSON.
    parser_classes = [JSONParser]

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run, created = backfill_start(
            site=serializer.validated_data["site"],
            event_wix_id=serializer.validated_data.get("event_wix_id", ""),
            trigger=BackfillRun.Trigger.API,
            user=request.user,
        )
        return Response(
            self.get_serializer(run).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


def _selection(request: Request) -> tuple[Selection, list[Any]]:
    """The entities a resync or dry-run request names; Wix ids the portal lacks are a 400."""
    serializer = EntitySelectionSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    selection = entities_select(site=data["site"], entity_type=data["entity_type"], wix_ids=data["wix_ids"])
    if selection.missing:
        shown = ", ".join(selection.missing[:20])
        raise ValidationError({"wix_ids": [f"Not mirrored on this site: {shown}"]})
    return selection, data.get("systems") or []


class ResyncView(APIView):
    """Push entities of a site to the external systems again (only what changed makes a call)."""

    permission_classes = [STAFF, needs("sync.resync")]
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Resync entities of a site",
        description=(
            "Queues a push of each named entity (an event with its policies and ticket definitions) "
            "to each active system, or to the systems named; no `wix_ids`: every entity of that type "
            "the site has. Recorded in the history of what was named (of the site, for all)."
        ),
        tags=["resync"],
        request=EntitySelectionSerializer,
        responses=answers({202: ResyncResultSerializer}, body=True),
    )
    def post(self, request: Request) -> Response:
        selection, systems = _selection(request)
        queued = resync_selection(selection=selection, systems=systems, by=request.user, via="API")
        return Response({"entities": len(selection.refs), "queued": queued}, status=status.HTTP_202_ACCEPTED)


class DryRunView(APIView):
    """What a resync would send, changing nothing (no call, no row)."""

    permission_classes = [STAFF, needs("sync.resync")]
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Dry run: what a push would send",
        description=(
            "For each entity and system: the action a push would take and the payload it would "
            "send. Nothing is sent or written."
        ),
        tags=["resync"],
        request=EntitySelectionSerializer,
        responses=answers({200: DryRunSerializer}, body=True),
    )
    def post(self, request: Request) -> Response:
        selection, systems = _selection(request)
        rows = resync_plan(refs=selection.refs, systems=systems or None)
        names = entity_names((row.ref.site.pk, row.ref.entity_type, row.ref.wix_id) for row in rows)
        counts: dict[str, int] = {}
        shown = []
        for row in rows:
            counts[row.action] = counts.get(row.action, 0) + 1
            name = names.get((row.ref.site.pk, row.ref.wix_id))
            shown.append(
                {
                    "system": row.system.pk,
                    "system_name": row.system.name,
                    "site": row.ref.site.pk,
                    "entity_type": row.ref.entity_type,
                    "wix_id": row.ref.wix_id,
                    "name": name.name if name else "",
                    "event_name": name.event if name else "",
                    "action": row.action,
                    "external_id": row.external_id,
                    "payload": row.payload,
                    "error": row.error,
                }
            )
        return Response(DryRunSerializer({"counts": counts, "rows": shown}).data)
