"""End to end: the sandbox's demo sale start, Wix consent from the sandbox, a real SMTP server
on loopback (aiosmtpd) that receives the emails, and one-click unsubscribe from a received one."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import time_machine

from notifications.models import EmailSuppression, Notification, SaleStartCampaign
from notifications.services.demo import demo_subscribers_seed
from notifications.services.sending import campaigns_drain, notifications_drain
from portal.mailsink import MailSink
from sync.models import BackfillRun
from sync.sandbox.demo import demo_id, sandbox_seed
from sync.sandbox.models import SandboxEmailSubscription
from sync.services.backfill import backfill_execute, backfill_start

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sink(settings: object) -> MailSink:
    with MailSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # type: ignore[attr-defined]
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port  # type: ignore[attr-defined]
        yield sink


def test_the_demo_sale_start_emails_each_opted_in_subscriber_once_over_real_smtp(
    live_server: object, settings: object, sink: MailSink
) -> None:
    settings.PORTAL_BASE_URL = live_server.url  # type: ignore[attr-defined]
    settings.WIX_BACKOFF_BASE = 0.001  # type: ignore[attr-defined]
    site = sandbox_seed()
    site.api_base_url = f"{live_server.url}/sandbox/wix"  # type: ignore[attr-defined]
    site.save()
    demo_subscribers_seed(site=site)
    run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.COMMAND)
    backfill_execute(run_id=run.pk)
    early = demo_id("td:jazz-night:early")
    campaign = SaleStartCampaign.objects.get(ticket_definition_wix_ids=[early])
    assert campaign.status == "scheduled"
    assert not SaleStartCampaign.objects.exclude(pk=campaign.pk).exists()  # the other sales started already

    with time_machine.travel(campaign.sale_start + dt.timedelta(seconds=5)):
        assert campaigns_drain(budget_seconds=5) == 1
        assert notifications_drain(budget_seconds=10) == 2

    # ana and bruno: SUBSCRIBED on Wix. Not carla (NOT_SET), duarte (UNSUBSCRIBED), eva
    # (BOUNCED), filipe (SPAM_COMPLAINT), helena (the gala only) nor ines (unsubscribed here).
    assert sorted(r[0] for r in sink.recipients) == ["ana@example.com", "bruno@example.com"]
    ids = {str(m["Message-ID"]) for m in sink.messages}
    assert len(ids) == 2 and ids == set(Notification.objects.values_list("message_id", flat=True))
    message = next(m for m in sink.messages if m["To"] == "ana@example.com")
    assert str(message["Subject"]) == "Tickets for Jazz Night are on sale: Early bird"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Early bird: 15.00 EUR" in text and "Hot Clube" in text and "(Europe/Lisbon)" in text
    assert "<td>15.00 EUR</td>" in html and "Hello Ana" in html
    assert not Notification.objects.exclude(status="sent").exists()

    # One click from the received message: a POST with no cookie, written back to Wix.
    link = str(message["List-Unsubscribe"]).strip().strip("<>")
    assert link.startswith(f"{live_server.url}/notifications/unsubscribe/")  # type: ignore[attr-defined]
    response = requests.post(link, data="List-Unsubscribe=One-Click", timeout=10)
    assert response.status_code == 200 and "You are unsubscribed" in response.text
    assert EmailSuppression.objects.filter(site=site, email="ana@example.com").exists()
    assert SandboxEmailSubscription.objects.get(email="ana@example.com").subscription_status == "UNSUBSCRIBED"
