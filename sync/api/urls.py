from django.urls import path
from rest_framework.routers import DefaultRouter

from sync.api import failures
from sync.api.views import BackfillRunViewSet, DryRunView, ResyncView

router = DefaultRouter()
router.register("backfills", BackfillRunViewSet, basename="backfill")
urlpatterns = [
    path("resyncs/", ResyncView.as_view(), name="api-resync"),
    path("dry-runs/", DryRunView.as_view(), name="api-dry-run"),
    path("dead-letters/", failures.DeadLetterList.as_view(), name="api-dead-letters"),
    path("dead-letters/retry/", failures.DeadLetterRetry.as_view(), name="api-dead-letters-retry"),
    path("failed-deliveries/", failures.FailedDeliveryList.as_view(), name="api-failed-deliveries"),
    path(
        "failed-deliveries/replay/",
        failures.FailedDeliveryReplay.as_view(),
        name="api-failed-deliveries-replay",
    ),
    path("failed-backfills/", failures.FailedBackfillList.as_view(), name="api-failed-backfills"),
    *router.urls,
]
