from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from portal.views import healthz, mail_sink, metrics
from sync.api.webhooks import WixWebhookView

urlpatterns = [
    # The portal has no public pages: its home is the console.
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    # The OpenAPI 3 schema and two pages reading it (their files served from static).
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # A browser without a staff session goes to the admin's login, then back here.
    path(
        "api/docs/",
        staff_member_required(SpectacularSwaggerView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        staff_member_required(
            SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html")
        ),
        name="api-redoc",
    ),
    path("api/", include("sync.api.urls")),
    path("api/", include("notifications.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("webhooks/wix/", WixWebhookView.as_view(), name="wix-webhook"),
    path("notifications/", include("notifications.urls")),
    # Public, read-only: the live ticket counters (JSON, SSE, the widget).
    path("", include("notifications.counters.urls")),
]

if settings.PORTAL_SANDBOX:
    # Never served unless enabled; the views check the setting again.
    from sync.sandbox import ticketing

    urlpatterns += [
        path("mail-sink/", mail_sink, name="mail-sink"),
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

# Under /api/, JSON; elsewhere Django's pages.
handler404 = "sync.api.errors.not_found"
handler500 = "sync.api.errors.server_error"
