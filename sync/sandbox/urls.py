from django.urls import path

from sync.sandbox import subscriptions, views
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
    # Email Subscriptions (wix-api.md §4a); the query path before the collection's.
    path(
        "email-marketing/v1/email-subscriptions/query",
        views.wix_endpoint(subscriptions.query_view),
        name="email-subscriptions-query",
    ),
    path(
        "email-marketing/v1/email-subscriptions",
        views.wix_endpoint(subscriptions.upsert_view),
        name="email-subscriptions-upsert",
    ),
]
for name, prefixes in _families.items():
    for index, (prefix, kind) in enumerate(prefixes):
        urlpatterns += [
            path(f"{prefix}/query", views.query(kind), name=f"{name}-query-{index}"),
            path(f"{prefix}/<str:wix_id>", views.item(kind), name=f"{name}-item-{index}"),
            path(prefix, views.collection(kind), name=f"{name}-collection-{index}"),
        ]
