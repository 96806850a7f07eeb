from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from portal.views import healthz

admin.site.site_header = "Events Sync Portal"
admin.site.site_title = "Events Sync Portal"
admin.site.index_title = "Operations"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("sync.api.urls")),
    path("healthz", healthz, name="healthz"),
]

if settings.PORTAL_SANDBOX:
    # Never served unless enabled; the views check the setting again.
    urlpatterns.append(path("sandbox/wix/", include("sync.sandbox.urls")))
