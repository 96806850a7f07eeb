from rest_framework.routers import SimpleRouter

from notifications.api.views import CampaignViewSet

router = SimpleRouter()
router.register("campaigns", CampaignViewSet, basename="campaign")
urlpatterns = router.urls
