from django.urls import path

from sync.sandbox import views
from sync.sandbox.services import Kind

app_name = "sandbox"

_families = {
    "policies": [("events/v2/policies", Kind.POLICY), ("events-policies/v2/policies", Kind.POLICY)],
    "ticket_definitions": [
        ("events/v3/ticket-definitions", Kind.TICKET_DEFINITION),
        ("events-ticket-definitions/v3/ticket-definitions", Kind.TICKET_DEFINITION),
    ],
    "events": [("events/v3/events", Kind.EVENT)],
}

urlpatterns = [
    path("oauth2/token", views.oauth_token, name="oauth-token"),
    path("_sandbox/orders", views.orders, name="orders"),
]
for name, prefixes in _families.items():
    for index, (prefix, kind) in enumerate(prefixes):
        urlpatterns += [
            path(f"{prefix}/query", views.query(kind), name=f"{name}-query-{index}"),
            path(f"{prefix}/<str:wix_id>", views.item(kind), name=f"{name}-item-{index}"),
            path(prefix, views.collection(kind), name=f"{name}-collection-{index}"),
        ]
