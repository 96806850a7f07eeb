from rest_framework.routers import DefaultRouter

from sync.api.views import BackfillRunViewSet

router = DefaultRouter()
router.register("backfills", BackfillRunViewSet, basename="backfill")
urlpatterns = router.urls
