from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from portal.views import healthz, metrics
from sync.api.webhooks import WixWebhookView

urlpatterns = [
    # The portal has no public pages: its home is the console.
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("sync.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("webhooks/wix/", WixWebhookView.as_view(), name="wix-webhook"),
    # Public, read-only: the live ticket counters (JSON, SSE, the widget).
    path("", include("notifications.urls")),
]

if settings.PORTAL_SANDBOX:
    # Never served unless enabled; the views check the setting again.
    from sync.sandbox import ticketing

    urlpatterns += [
        path("sandbox/wix/", include("sync.sandbox.urls")),
        path(
            "sandbox/ticketing/<slug:collection>/",
            ticketing.collection_view,
            name="sandbox-ticketing-collection",
        ),
        path(
            "sandbox/ticketing/<slug:collection>/<str:record_id>",
            ticketing.record_view,
            name="sandbox-ticketing-record",
        ),
    ]
