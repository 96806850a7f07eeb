from __future__ import annotations

from rest_framework import mixins, permissions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from sync.api.serializers import BackfillRunSerializer
from sync.models import BackfillRun
from sync.services.backfill import backfill_start


class RolePermissions(permissions.DjangoModelPermissions):
    """Reading needs the model's view permission (DRF's default lets any staff user read);
    starting a backfill needs ``sync.start_backfill``, as in the admin."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.start_backfill"],
    }


class BackfillRunViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Start a backfill (POST ``{"site": id, "event_wix_id": "..."}``) and watch its progress.

    Starting a scope that is already queued or running answers 200 with that run instead
    of 201 with a new one.
    """

    queryset = BackfillRun.objects.select_related("site").order_by("-created_at")
    serializer_class = BackfillRunSerializer
    permission_classes = [permissions.IsAdminUser, RolePermissions]

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
