"""Roles on every surface: each admin action and page, per persona (issue 10, point 4)."""

from __future__ import annotations

import pytest
import responses
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import RequestFactory
from django.urls import reverse

from sync.models import BackfillRun, ExternalSystem, OutboundWork, WebhookDelivery, WixSite
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

OPERATOR_ACTIONS = {
    "sync.wixsite": {"backfill_all_events", "reconcile_now"},
    "sync.event": {"backfill_events", "resync_selected", "dry_run_resync"},
    "sync.policy": {"resync_selected", "dry_run_resync"},
    "sync.ticketdefinition": {"resync_selected", "dry_run_resync"},
    "sync.backfillrun": {"resume"},
    "sync.webhookdelivery": {"replay_selected", "replay_failed_since"},
    "sync.externalsystem": {"test_connection", "resume"},
    "sync.externallink": {"resync_selected", "dry_run_resync"},
    "sync.outboundwork": {"retry_now", "retry_dead_since"},
    "notifications.salestartcampaign": {"send_now", "send_test", "cancel"},
    "notifications.notification": {"send_again"},
    "notifications.localsubscriber": {"export_csv", "delete_selected"},
    "notifications.emailsuppression": {"delete_selected"},
    "notifications.mailchimpsource": {"test_connection"},
    "notifications.restsource": {"test_connection"},
    # Operators set counters up (and take them down): the page's own delete, and publish again.
    "notifications.ticketcounter": {"publish_now", "delete_selected"},
}
# Both roles revoke their own API tokens (and see no one else's).
OWN_TOKENS = {"portal.apitoken": {"delete_selected"}}
ROLE_ACTIONS = {"staff": {}, "viewer": OWN_TOKENS, "operator": OPERATOR_ACTIONS | OWN_TOKENS}


def _actions(user: User, model_admin: admin.ModelAdmin) -> set[str]:
    """The actions a changelist offers this user (Django runs no other); none without the page."""
    request = RequestFactory().post("/")
    request.user = user
    if not model_admin.has_view_or_change_permission(request):
        return set()
    return set(model_admin.get_actions(request))


def test_every_admin_action_declares_its_permission() -> None:
    undeclared = []
    for model, model_admin in admin.site._registry.items():
        for func, name, _ in model_admin._get_base_actions():  # type: ignore[attr-defined]
            if not getattr(func, "allowed_permissions", None):
                undeclared.append(f"{model._meta.label}.{name}")
    assert undeclared == []


@pytest.mark.parametrize("role", ["staff", "viewer", "operator"])
def test_each_role_is_offered_exactly_its_actions(request: pytest.FixtureRequest, role: str) -> None:
    user = request.getfixturevalue(role)
    offered = {
        model._meta.label_lower: actions
        for model, model_admin in admin.site._registry.items()
        if (actions := _actions(user, model_admin))
    }
    assert offered == ROLE_ACTIONS[role]


def test_a_superuser_is_offered_every_action(admin_user: User) -> None:
    for model, model_admin in admin.site._registry.items():
        own = {a if isinstance(a, str) else a.__name__ for a in model_admin.actions or ()}
        assert own <= _actions(admin_user, model_admin), model._meta.label


def test_the_groups_hold_the_documented_permissions() -> None:
    viewers = set(Group.objects.get(name="Sync viewers").permissions.values_list("codename", flat=True))
    operators = set(Group.objects.get(name="Sync operators").permissions.values_list("codename", flat=True))
    assert {"view_synclog", "view_externalsystem", "view_schedule"} <= viewers
    assert not {c for c in viewers if not c.startswith("view_")} - {"add_apitoken", "delete_apitoken"}
    assert viewers < operators
    assert {"start_backfill", "resync", "replay_webhook", "retry_work", "test_connection"} <= operators
    assert {"change_fieldmapping", "change_externallink", "change_externalsystem"} <= operators
    # Where credentials go, endpoints, schedules and users stay with superusers.
    forbidden = {
        "change_system_endpoint",
        "change_site_endpoint",
        "add_externalsystem",
        "change_wixsite",
        "change_externalendpoint",
        "add_schedule",
        "change_user",
    }
    assert not forbidden & operators


# Each action as a real POST, by each persona: (changelist, action, rows, what shows it ran).
def _ran_backfill(site: WixSite) -> bool:
    return BackfillRun.objects.filter(status="queued").exists()


@responses.activate
@pytest.mark.parametrize(
    ("url_name", "action", "selected", "ran"),
    [
        ("sync_wixsite", "backfill_all_events", lambda: WixSite.objects.all(), _ran_backfill),
        (
            "sync_backfillrun",
            "resume",
            lambda: BackfillRun.objects.filter(status="failed"),
            _ran_backfill,
        ),
        (
            "sync_webhookdelivery",
            "replay_selected",
            lambda: WebhookDelivery.objects.filter(status="failed"),
            lambda site: WebhookDelivery.objects.filter(status="received", wix_event_id="evt-f").exists(),
        ),
        (
            "sync_outboundwork",
            "retry_now",
            lambda: OutboundWork.objects.filter(status="dead"),
            lambda site: not OutboundWork.objects.filter(status="dead").exists(),
        ),
        (
            "sync_externalsystem",
            "test_connection",
            lambda: ExternalSystem.objects.filter(kind="pretix"),
            lambda site: len(responses.calls) > 0,
        ),
    ],
)
def test_each_action_runs_only_for_the_roles_that_may(
    persona: tuple[str, User | None],
    filled: WixSite,
    url_name: str,
    action: str,
    selected,
    ran,
) -> None:
    name, user = persona
    WebhookDelivery.objects.create(site=filled, wix_event_id="evt-f", raw_body="x", status="failed")
    OutboundWork.objects.update(status="dead")
    ExternalSystem.objects.create(
        name="pretix",
        kind="pretix",
        base_url="https://pretix.test",
        organizer="demo",
        auth_type="token",
        auth_secret_env="EXTERNAL_SANDBOX_TOKEN",
    )
    responses.get("https://pretix.test/api/v1/organizers/demo/", status=401)
    rows = [str(pk) for pk in selected().values_list("pk", flat=True)]
    assert rows
    client_for(user).post(
        reverse(f"admin:{url_name}_changelist"), {"action": action, "_selected_action": rows}
    )
    assert ran(filled) == (name in ("operator", "superuser")), name


def test_view_pages_follow_the_roles(filled: WixSite, persona: tuple[str, User | None]) -> None:
    name, user = persona
    client = client_for(user)
    pages = ["sync_synclog", "sync_externalsystem", "sync_webhookdelivery", "django_q_schedule"]
    codes = {page: client.get(reverse(f"admin:{page}_changelist")).status_code for page in pages}
    expected = {"anonymous": 302, "staff": 403}.get(name, 200)
    assert set(codes.values()) == {expected}, codes
