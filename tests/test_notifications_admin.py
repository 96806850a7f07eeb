"""The unsubscribe link, the template editor, and the campaign pages with their permissions."""

from __future__ import annotations

import re

import pytest
import responses
import time_machine
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from notifications.models import EmailSuppression, EmailTemplate, LocalSubscriber, SaleStartCampaign
from notifications.services.emails import unsubscribe_url
from sync.models import WixSite
from tests.conftest import client_for
from tests.notify_helpers import BEFORE, UPSERT, event_mirror, subscribe, td_mirror

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(site: WixSite) -> SaleStartCampaign:
    with time_machine.travel(BEFORE, tick=False):
        event_mirror(site)
        td_mirror(site)
    return SaleStartCampaign.objects.get()


def _path(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


@responses.activate
def test_one_click_unsubscribe_posts_without_cookies_is_idempotent_and_writes_back(site: WixSite) -> None:
    subscribe(site, "ana@example.com")
    responses.add(responses.POST, UPSERT, json={"subscription": {"email": "ana@example.com"}})
    url = _path(unsubscribe_url(site=site, email="ana@example.com"))
    client = Client(enforce_csrf_checks=True)
    page = client.get(url)
    assert page.status_code == 200 and b"Stop emails about ticket sales to ana@example.com?" in page.content
    assert not EmailSuppression.objects.exists()  # a GET (a link scanner) changes nothing
    for _ in range(2):
        done = client.post(url, {"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200 and b"You are unsubscribed" in done.content
    assert EmailSuppression.objects.get().reason == "link"
    assert LocalSubscriber.objects.get().unsubscribed
    assert len(responses.calls) == 1  # written back to Wix once
    assert responses.calls[0].request.body == (
        b'{"subscription": {"email": "ana@example.com", "subscriptionStatus": "UNSUBSCRIBED"}}'
    )


def test_a_forged_or_cut_token_is_refused_and_changes_nothing(site: WixSite) -> None:
    url = _path(unsubscribe_url(site=site, email="ana@example.com"))
    forged = url.replace("unsubscribe/", "unsubscribe/x")
    assert Client().post(forged).status_code == 400
    assert Client().post(url[:-8] + "/").status_code == 400
    assert not EmailSuppression.objects.exists()


def test_a_template_error_is_caught_at_save_and_a_good_one_is_previewed(
    admin_client: Client, site: WixSite, campaign: SaleStartCampaign
) -> None:
    url = reverse("admin:notifications_emailtemplate_add")
    assert "Tickets for {{ event.title }}" in admin_client.get(url).content.decode()  # the defaults
    bad = {"site": site.pk, "subject": "{% if %}", "text_body": "x", "html_body": "{{ event.title|nosuch }}"}
    page = admin_client.post(url, bad)
    assert page.status_code == 200 and not EmailTemplate.objects.exists()
    assert page.content.decode().count("This template does not render") == 2
    good = {
        "site": site.pk,
        "subject": "On sale: {{ event.title }}",
        "text_body": "Hi {{ name }}",
        "html_body": "<p>{{ event.title }}</p>",
    }
    assert admin_client.post(url, good).status_code == 302
    row = EmailTemplate.objects.get()
    page = admin_client.get(
        reverse("admin:notifications_emailtemplate_change", args=[row.pk])
    ).content.decode()
    assert "On sale: Spring Gala" in page and "Hi Ana" in page


def test_campaign_actions_need_their_permissions(
    site: WixSite, campaign: SaleStartCampaign, viewer: User, operator: User
) -> None:
    url = reverse("admin:notifications_salestartcampaign_changelist")
    page = client_for(viewer).get(url).content.decode()
    assert "Spring Gala" in page and "send_now" not in page
    assert (
        client_for(viewer).post(url, {"action": "cancel", "_selected_action": [campaign.pk]}).status_code
        == 200
    )
    assert SaleStartCampaign.objects.get().status == "scheduled"
    operator_page = client_for(operator).get(url).content.decode()
    assert "send_now" in operator_page and "about 0 (before Wix consent)" in operator_page
    client_for(operator).post(url, {"action": "cancel", "_selected_action": [campaign.pk]})
    assert SaleStartCampaign.objects.get().status == "cancelled"


def test_send_a_test_to_me(admin_client: Client, admin_user: User, campaign: SaleStartCampaign) -> None:
    url = reverse("admin:notifications_salestartcampaign_changelist")
    admin_client.post(url, {"action": "send_test", "_selected_action": [campaign.pk]})
    (message,) = mail.outbox
    assert message.to == [admin_user.email] and message.subject.startswith("[Test] Tickets for Spring Gala")
    assert not campaign.notifications.exists()


def test_the_console_shows_upcoming_campaigns_and_the_banner_a_blocked_one(
    admin_client: Client, campaign: SaleStartCampaign
) -> None:
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="campaigns-upcoming"' in page and "Spring Gala" in page
    SaleStartCampaign.objects.update(status="blocked", blocked_reason="Wix refused")
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert re.search(r"1 sale-start campaign\(s\) blocked or missed", page)


def test_csv_import_page_reports_each_bad_row(admin_client: Client, site: WixSite) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = reverse("admin:notifications_localsubscriber_import")
    csv = b"email,name,all_events\nana@example.com,Ana,yes\nbad,Bad,yes\n"
    page = admin_client.post(
        url, {"site": site.pk, "file": SimpleUploadedFile("s.csv", csv)}
    ).content.decode()
    assert "1 new, 0 updated, 1 row(s) refused." in page and "&#x27;bad&#x27; is not an email address" in page
    export = admin_client.post(
        reverse("admin:notifications_localsubscriber_changelist"),
        {
            "action": "export_csv",
            "_selected_action": list(LocalSubscriber.objects.values_list("pk", flat=True)),
        },
    )
    assert export["Content-Type"] == "text/csv" and b"ana@example.com,Ana,,yes,no," in export.content


def test_a_source_that_cannot_be_read_does_not_break_the_campaign_pages(
    admin_client: Client, campaign: SaleStartCampaign
) -> None:
    from notifications.sources import base

    class Down(base.SubscriberSource):
        label = "down"

        def subscribers_for_event(self, *, event_wix_id: str) -> list[base.Subscriber]:
            raise base.SourceError("Mailchimp answered 503")

        def opted_out(self) -> list[str]:
            return []

    def builder(site: WixSite) -> list[base.SubscriberSource]:
        return [Down()]

    base.source_builder_register(builder)
    try:
        page = admin_client.get(reverse("admin:notifications_salestartcampaign_changelist")).content.decode()
        console = admin_client.get(reverse("admin:index")).content.decode()
    finally:
        base._BUILDERS.remove(builder)
    assert "unknown (Mailchimp answered 503)" in page
    assert "about unknown (Mailchimp answered 503) recipient(s)" in console
