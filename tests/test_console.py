"""The operations console: its figures, its banner, its sections, readable rows, the dead letter page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal import dashboard
from sync.models import (
    BackfillRun,
    BackfillStep,
    Event,
    ExternalSystem,
    OutboundWork,
    Policy,
    SyncLog,
    WebhookDelivery,
    WixSite,
)
from sync.selectors.console import backfills_running, percentile, site_figures, system_figures
from sync.services.mirrors import event_upsert_from_wix, policy_upsert_from_wix
from tests.conftest import client_for, rest_target, wix_payload

pytestmark = pytest.mark.django_db

EVENT = wix_payload("event__query")["events"][0]
POLICY = {**wix_payload("policy__get")["policy"], "eventId": EVENT["id"]}


@pytest.fixture
def mirrored(site: WixSite) -> Policy:
    event_upsert_from_wix(site=site, data=EVENT)
    policy_upsert_from_wix(site=site, data=POLICY)
    return Policy.objects.get(wix_id=POLICY["id"])


@pytest.fixture
def system() -> ExternalSystem:
    return ExternalSystem.objects.create(name="Box office", base_url="https://tickets.test", auth_type="none")


def _work(
    system: ExternalSystem, site: WixSite, status: str, wix_id: str = "p", **fields: object
) -> OutboundWork:
    return OutboundWork.objects.create(
        system=system,
        site=site,
        entity_type="policy",
        wix_id=wix_id,
        trigger="webhook",
        status=status,
        **fields,
    )


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(n) for n in range(1, 11)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 1.0)) == (5.0, 10.0, 10.0)
    assert percentile([], 0.5) is None


def test_site_and_system_figures_count_what_waits_fails_and_how_late(
    site: WixSite, mirrored: Policy, system: ExternalSystem
) -> None:
    now = timezone.now()
    _work(system, site, "pending", "a")
    _work(system, site, "pending", "b")
    _work(system, site, "in_flight", "c")
    _work(system, site, "dead", "d", last_error="422 refused")
    # Ten pushes in the last hour, 1 to 10 s after their change on Wix; one a day ago (not counted).
    for n in range(1, 11):
        finished = now - dt.timedelta(minutes=n)
        _work(
            system, site, "done", f"w{n}", changed_at=finished - dt.timedelta(seconds=n), finished_at=finished
        )
    _work(
        system,
        site,
        "done",
        "old",
        changed_at=now - dt.timedelta(days=2),
        finished_at=now - dt.timedelta(days=2),
    )
    work = OutboundWork.objects.first()
    assert work is not None
    for status in ["success"] * 8 + ["retryable", "permanent", "sending"]:
        SyncLog.objects.create(
            work=work,
            system=system,
            entity_type="policy",
            wix_id="a",
            trigger="webhook",
            action="update",
            status=status,
        )
    for n, status in enumerate(["processed"] * 4 + ["failed"]):
        WebhookDelivery.objects.create(
            site=site, wix_event_id=f"e{n}", event_type="x", raw_body="a", status=status
        )
    old = WebhookDelivery.objects.create(
        site=site, wix_event_id="old", event_type="x", raw_body="a", status="failed"
    )
    WebhookDelivery.objects.filter(pk=old.pk).update(received_at=now - dt.timedelta(days=2))

    [figures] = site_figures(now=now)
    assert (figures.events, figures.policies, figures.ticket_definitions) == (1, 1, 0)
    assert (figures.work.pending, figures.work.in_flight, figures.work.dead) == (2, 1, 1)
    assert (figures.webhooks_day.total, figures.webhooks_day.failed) == (5, 1)
    assert figures.webhooks_day.percent == 20.0
    assert figures.newest_webhook is not None and figures.newest_webhook.wix_event_id == "e4"

    [box] = system_figures(now=now)
    assert (box.work.pending, box.work.in_flight, box.work.dead) == (2, 1, 1)
    assert (box.calls_hour.total, box.calls_hour.failed) == (10, 2)  # a call still sending is not counted yet
    assert box.pushes_hour == 10
    assert (box.lag_p50, box.lag_p95) == (5.0, 10.0)
    assert len(box.chart) == 24 and sum(bar.pushes for bar in box.chart) == 10
    tallest = max(box.chart, key=lambda bar: bar.pixels)
    assert tallest.p95 == 10.0 and tallest.pixels == 27


def test_the_lag_chart_puts_each_push_in_its_hour(site: WixSite, system: ExternalSystem) -> None:
    now = timezone.now().replace(minute=30)
    for hours_ago, lag in [(0, 2), (3, 8), (3, 4), (30, 99)]:
        finished = now - dt.timedelta(hours=hours_ago)
        _work(
            system,
            site,
            "done",
            f"w{hours_ago}{lag}",
            changed_at=finished - dt.timedelta(seconds=lag),
            finished_at=finished,
        )
    [box] = system_figures(now=now)
    by_hour = {bar.hour.hour: bar for bar in box.chart if bar.pushes}
    assert {h: (b.pushes, b.p95) for h, b in by_hour.items()} == {
        now.hour: (1, 2.0),
        (now - dt.timedelta(hours=3)).hour: (2, 8.0),
    }  # the push 30 hours ago is outside the chart


def test_running_backfills_show_progress_per_entity_type(site: WixSite) -> None:
    run = BackfillRun.objects.create(site=site, trigger="admin", status="running")
    BackfillStep.objects.create(
        run=run, event_wix_id="e1", status="done", fetched_by_type={"policy": 2, "ticket_definition": 3}
    )
    BackfillStep.objects.create(run=run, event_wix_id="e2", status="done", fetched_by_type={"policy": 1})
    BackfillStep.objects.create(run=run, event_wix_id="e3", status="failed")
    BackfillStep.objects.create(run=run, event_wix_id="e4", status="queued")
    BackfillRun.objects.create(site=site, trigger="admin", status="succeeded")  # finished: not shown
    [progress] = backfills_running()
    assert (progress.run, progress.events_done, progress.events_total, progress.failed_steps) == (
        run,
        3,
        4,
        1,
    )
    assert progress.by_type == {"policy": 3, "ticket_definition": 3}
    assert progress.percent == 75


def test_the_banner_names_each_problem_and_links_to_its_list_until_it_is_gone(
    admin_client: Client, site: WixSite, system: ExternalSystem
) -> None:
    dead = _work(system, site, "dead", last_error="boom")
    page = admin_client.get(reverse("admin:index")).content.decode()
    banner = re.search(r'<section id="status-banner".*?</section>', page, re.S)
    assert banner is not None and "Needs attention" in banner.group()
    assert "1 dead letter(s)" in banner.group()
    assert reverse("admin:sync_outboundwork_changelist") + "?status__exact=dead" in banner.group()
    OutboundWork.objects.filter(pk=dead.pk).update(status="done")
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert "All clear" in page and "Needs attention" not in page


def test_the_panels_show_real_figures_linked_to_filtered_lists(
    admin_client: Client, site: WixSite, mirrored: Policy, system: ExternalSystem
) -> None:
    _work(system, site, "dead", last_error="boom")
    page = admin_client.get(reverse("admin:index")).content.decode()
    sites = re.search(r'<table class="console-table" id="sites-table">.*?</table>', page, re.S)
    assert sites is not None
    assert "1 event" in sites.group() and "1 policy" in sites.group() and "0 tickets" in sites.group()
    dead_link = f"?site__id__exact={site.pk}&amp;status__exact=dead"
    assert dead_link in sites.group()
    systems = re.search(r'<table class="console-table" id="systems-table">.*?</table>', page, re.S)
    assert systems is not None and "Box office" in systems.group()
    assert f"?system__id__exact={system.pk}&amp;status__exact=dead" in systems.group()
    # The link leads to a list the admin accepts (filters it offers), showing that row.
    listed = admin_client.get(reverse("admin:sync_outboundwork_changelist") + dead_link.replace("&amp;", "&"))
    assert listed.status_code == 200 and "boom" in listed.content.decode()


def test_pages_are_grouped_by_what_staff_do_and_internals_stand_apart(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:index"))
    sections = {
        app["name"]: [m["object_name"] for m in app["models"]] for app in response.context["app_list"]
    }
    assert list(sections) == ["Daily work", "Set-up", "People and access", "Internals"]
    assert sections["Daily work"][:3] == ["OutboundWork", "WebhookDelivery", "BackfillRun"]
    assert {"WixSite", "ExternalSystem"} <= set(sections["Set-up"])
    assert {"User", "Group", "ApiToken"} <= set(sections["People and access"])
    assert {"Schedule", "SandboxEvent"} <= set(sections["Internals"])
    # One app's own page is still Django's.
    app_page = admin_client.get(reverse("admin:app_list", args=["sync"]))
    assert [app["name"] for app in app_page.context["app_list"]] == ["Wix sync"]


def test_panels_follow_permissions(staff: User, viewer: User, site: WixSite) -> None:
    nothing = client_for(staff).get(reverse("admin:index")).content.decode()
    assert 'id="panel-sites"' not in nothing and 'id="panel-systems"' not in nothing
    seen = client_for(viewer).get(reverse("admin:index")).content.decode()
    assert 'id="panel-sites"' in seen and 'id="panel-systems"' in seen and 'id="panel-backfills"' in seen


def test_a_broken_panel_says_so_and_the_console_still_loads(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(request: object) -> dict:
        raise ZeroDivisionError

    monkeypatch.setitem(dashboard._PANELS, "broken", dashboard.Panel("broken", "Broken", "x.html", broken))
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "This panel could not be read: ZeroDivisionError" in page and 'id="panel-sites"' in page


def test_the_portal_has_no_public_site_its_root_is_the_console(client: Client, admin_client: Client) -> None:
    assert client.get("/").headers["Location"] == reverse("admin:index")
    assert "View site" not in admin_client.get(reverse("admin:index")).content.decode()


def test_lists_name_entities_by_their_wix_names_with_the_uuid_beneath(
    admin_client: Client, site: WixSite, mirrored: Policy, system: ExternalSystem
) -> None:
    work = _work(system, site, "dead", POLICY["id"], last_error="boom")
    _work(system, site, "pending", "never-mirrored")
    WebhookDelivery.objects.create(
        site=site,
        wix_event_id="e1",
        event_type="wix.events.v2.policy_updated",
        entity_id=POLICY["id"],
        raw_body="a",
    )
    policy_url = reverse("admin:sync_policy_change", args=[mirrored.pk])
    event_title = Event.objects.get().title
    for page in ["outboundwork", "webhookdelivery"]:
        html = admin_client.get(reverse(f"admin:sync_{page}_changelist")).content.decode()
        assert f'<a href="{policy_url}#timeline"><strong>{mirrored.name}</strong></a>' in html, page
        assert f"{event_title} · <code>{POLICY['id']}</code>" in html, page
    listed = admin_client.get(reverse("admin:sync_outboundwork_changelist")).content.decode()
    assert "not mirrored" in listed and "never-mirrored" in listed
    # The work's own page names it too.
    own = admin_client.get(reverse("admin:sync_outboundwork_change", args=[work.pk])).content.decode()
    assert f"<strong>{mirrored.name}</strong>" in own


def test_names_cost_one_query_per_entity_type_whatever_the_page_size(
    admin_client: Client,
    site: WixSite,
    mirrored: Policy,
    system: ExternalSystem,
    django_assert_max_num_queries: object,
) -> None:
    for n in range(3):
        _work(system, site, "done", f"x{n}")
    url = reverse("admin:sync_outboundwork_changelist")
    admin_client.get(url)  # warm the session and content types
    with django_assert_max_num_queries(12) as few:  # type: ignore[operator]
        admin_client.get(url)
    for n in range(3, 60):
        _work(system, site, "done", f"x{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):  # type: ignore[operator]
        admin_client.get(url)


def test_the_dry_run_page_names_entities(admin_client: Client, site: WixSite, mirrored: Policy) -> None:
    rest_target(name="Box office")
    response = admin_client.post(
        reverse("admin:sync_policy_changelist"),
        {"action": "dry_run_resync", "_selected_action": [mirrored.pk]},
    )
    html = response.content.decode()
    assert 'id="dry-run"' in html
    assert f"<strong>{mirrored.name}</strong>" in html and POLICY["id"] in html
    assert "<strong>create</strong>" in html and "Box office" in html


def test_a_dead_letters_page_retries_it_for_operators_only(
    operator: User, viewer: User, site: WixSite, mirrored: Policy, system: ExternalSystem
) -> None:
    dead = _work(system, site, "dead", POLICY["id"], last_error="503 from the box office", attempts=8)
    page_url = reverse("admin:sync_outboundwork_change", args=[dead.pk])
    retry_url = reverse("admin:sync_outboundwork_retry", args=[dead.pk])
    as_viewer = client_for(viewer)
    seen = as_viewer.get(page_url).content.decode()
    assert "Dead letter: this push gave up after 8 attempts" in seen and 'id="retry-now"' not in seen
    assert as_viewer.post(retry_url).status_code == 403
    dead.refresh_from_db()
    assert dead.status == "dead"

    as_operator = client_for(operator)
    page = as_operator.get(page_url).content.decode()
    assert 'id="retry-now"' in page and f"<strong>{mirrored.name}</strong>" in page
    assert as_operator.get(retry_url).status_code == 405  # a button, never a link
    response = as_operator.post(retry_url, follow=True)
    assert "queued for another try" in response.content.decode()
    dead.refresh_from_db()
    assert dead.status == "pending" and dead.retried_by == operator
    entry = LogEntry.objects.get(object_id=str(dead.pk))
    assert entry.user == operator
