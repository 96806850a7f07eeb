"""Sending: the ledger before the send, one email each, failures that stop nothing, exactly once."""

from __future__ import annotations

import datetime as dt
import smtplib
from typing import Any

import pytest
import responses
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend

from notifications.models import Notification, SaleStartCampaign
from notifications.services.campaigns import campaign_send_now
from notifications.services.delivery import Delivery
from notifications.services.sending import (
    campaigns_drain,
    notifications_drain,
    notifications_release_stuck,
)
from portal import jobs
from sync.models import WixSite
from tests.notify_helpers import BEFORE, START, event_mirror, subscribe, td_mirror, wix_consent

pytestmark = pytest.mark.django_db


class FlakyBackend(BaseEmailBackend):
    """Stands in for an SMTP server: refuses some addresses, or drops the connection."""

    sent: list[Any] = []
    refuse: set[str] = set()
    down_after: int | None = None
    opened = 0

    def open(self) -> bool:
        if FlakyBackend.down_after is not None and len(FlakyBackend.sent) >= FlakyBackend.down_after:
            raise ConnectionRefusedError("connection refused")
        FlakyBackend.opened += 1
        return True

    def send_messages(self, messages: Any) -> int:
        for message in messages:
            if message.to[0] in FlakyBackend.refuse:
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"no such user")})
            if FlakyBackend.down_after is not None and len(FlakyBackend.sent) >= FlakyBackend.down_after:
                raise smtplib.SMTPResponseException(421, b"4.3.2 gone for maintenance")
            FlakyBackend.sent.append(message)
        return len(messages)


@pytest.fixture
def flaky(settings: Any) -> type[FlakyBackend]:
    settings.EMAIL_BACKEND = "tests.test_notifications_sending.FlakyBackend"
    FlakyBackend.sent, FlakyBackend.refuse, FlakyBackend.down_after, FlakyBackend.opened = [], set(), None, 0
    return FlakyBackend


@pytest.fixture
def campaign(site: WixSite) -> SaleStartCampaign:
    with time_machine.travel(BEFORE, tick=False):
        event_mirror(site)
        td_mirror(site)
    return SaleStartCampaign.objects.get()


def _subscribers(site: WixSite, n: int) -> list[str]:
    emails = [f"p{i:02d}@example.com" for i in range(n)]
    for email in emails:
        subscribe(site, email)
    return emails


@responses.activate
def test_at_the_start_time_each_opted_in_address_gets_one_email_with_its_headers(
    site: WixSite, campaign: SaleStartCampaign
) -> None:
    emails = _subscribers(site, 3)
    subscribe(site, "no@example.com")
    wix_consent(
        responses.mock,
        {e: ("SUBSCRIBED", "VALID") for e in emails} | {"no@example.com": ("UNSUBSCRIBED", "VALID")},
    )
    with time_machine.travel(START - dt.timedelta(minutes=1), tick=False):
        assert campaigns_drain(budget_seconds=1) == 0  # not due yet
    with time_machine.travel(START + dt.timedelta(seconds=5), tick=False):
        assert campaigns_drain(budget_seconds=1) == 1
        campaign.refresh_from_db()
        assert (campaign.status, campaign.recipients) == ("sending", 3)
        assert campaign.last_error == "left out: 1 wix:UNSUBSCRIBED"
        assert Notification.objects.filter(status="queued").count() == 3  # the ledger, before any send
        assert notifications_drain(budget_seconds=1) == 3
    assert sorted(m.to[0] for m in mail.outbox) == emails
    message = mail.outbox[0]
    row = Notification.objects.get(email=message.to[0])
    assert (row.status, row.message_id) == ("sent", message.extra_headers["Message-ID"])
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["List-Unsubscribe"].startswith(
        "<http://127.0.0.1:8000/notifications/unsubscribe/"
    )
    assert "Spring Gala" in message.subject and "General Admission" in message.subject
    assert "25.00 EUR" in message.body
    assert "Tuesday 10 March 2026, 08:00 (Europe/Lisbon)" in message.body  # Lisbon is UTC+0 in March
    html, mime = message.alternatives[0]
    assert mime == "text/html" and "<td>25.00 EUR</td>" in html
    # Released twice (django-q2 delivers at least once): nobody is added or emailed again.
    SaleStartCampaign.objects.filter(pk=campaign.pk).update(status="scheduled")
    with time_machine.travel(START + dt.timedelta(seconds=30), tick=False):
        campaigns_drain(budget_seconds=1)
        notifications_drain(budget_seconds=1)
    assert len(mail.outbox) == 3 and Notification.objects.count() == 3


@responses.activate
def test_an_invalid_or_refused_address_fails_alone_and_the_batch_goes_on(
    site: WixSite, campaign: SaleStartCampaign, flaky: type[FlakyBackend]
) -> None:
    emails = _subscribers(site, 4)
    flaky.refuse = {emails[1]}
    wix_consent(responses.mock, {e: ("SUBSCRIBED", "VALID") for e in emails})
    with time_machine.travel(START, tick=False):
        campaigns_drain(budget_seconds=1)
        Notification.objects.filter(email=emails[2]).update(email="not an address")
        notifications_drain(budget_seconds=1)
    assert sorted(m.to[0] for m in flaky.sent) == [emails[0], emails[3]]
    failed = dict(Notification.objects.filter(status="failed").values_list("email", "last_error"))
    assert failed == {emails[1]: "refused: 550 no such user", "not an address": "invalid address"}
    assert flaky.opened == 1  # one connection for the whole batch


@responses.activate
def test_an_smtp_outage_pauses_and_retries_with_nothing_lost_and_nothing_doubled(
    site: WixSite, campaign: SaleStartCampaign, flaky: type[FlakyBackend]
) -> None:
    emails = _subscribers(site, 5)
    wix_consent(responses.mock, {e: ("SUBSCRIBED", "VALID") for e in emails})
    flaky.down_after = 2
    with time_machine.travel(START, tick=False) as traveller:
        campaigns_drain(budget_seconds=1)
        notifications_drain(budget_seconds=1)
        assert len(flaky.sent) == 2
        waiting = Notification.objects.get(status="queued", attempts=1)
        assert "gone" in waiting.last_error and waiting.not_before > START  # backs off
        assert Notification.objects.filter(status="queued", attempts=0).count() == 2
        notifications_drain(budget_seconds=1)  # still down: the next drain stops at once
        flaky.down_after = None
        traveller.shift(dt.timedelta(minutes=5))
        notifications_drain(budget_seconds=1)
    assert sorted(m.to[0] for m in flaky.sent) == emails
    assert Notification.objects.filter(status="sent").count() == 5


class WorkerKilled(BaseException):
    """SIGKILL in a test: nothing catches it, and (with ``killed``) no clean-up runs."""


@pytest.fixture
def killed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed process closes nothing and marks nothing on its way out."""
    monkeypatch.setattr(Delivery, "close", lambda self: None)


def _kill_at(
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    name: str,
    call: int,
    *,
    after: bool = False,
    error: BaseException | type[BaseException] = WorkerKilled,
) -> None:
    """``target.name`` raises ``error`` (dies, by default) on its ``call``-th call, before doing
    its work or after."""
    real, calls = getattr(target, name), []

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == call and not after:
            raise error
        result = real(*args, **kwargs)
        if len(calls) == call:
            raise error
        return result

    monkeypatch.setattr(target, name, dying)


@pytest.mark.parametrize(
    ("where", "uncertain", "why"),
    [
        ("sending", [2], "the server may have it: it is the one row staff decide on"),
        ("after the server took it", [2], "delivered, but the answer was never recorded"),
        ("building the next", [2], "the row before was taken by the server and not yet marked"),
        ("handing over", [2], "killed handing the third over: the second, which the server took, was last"),
    ],
)
@responses.activate
def test_a_killed_worker_leaves_only_the_row_in_the_servers_hands_uncertain(
    site: WixSite,
    campaign: SaleStartCampaign,
    killed: None,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    uncertain: list[int],
    why: str,
) -> None:
    from django.core.mail.backends.locmem import EmailBackend

    from notifications.services.emails import CampaignMessages

    emails = _subscribers(site, 5)
    wix_consent(responses.mock, {e: ("SUBSCRIBED", "VALID") for e in emails})
    if where in ("sending", "after the server took it"):
        _kill_at(monkeypatch, EmailBackend, "send_messages", 2, after=where != "sending")
    elif where == "building the next":
        _kill_at(monkeypatch, CampaignMessages, "build", 3)
    else:
        _kill_at(monkeypatch, jobs.ClaimedUpdate, "__call__", 3)  # the third hand-over
    with time_machine.travel(START, tick=False) as traveller:
        campaigns_drain(budget_seconds=1)
        pks = list(Notification.objects.order_by("pk").values_list("pk", flat=True))
        with pytest.raises(WorkerKilled):
            notifications_drain(budget_seconds=1)
        monkeypatch.undo()
        reached = [m.to[0] for m in mail.outbox]
        traveller.shift(dt.timedelta(hours=1))
        notifications_release_stuck()
        assert [
            pks.index(pk) + 1
            for pk in Notification.objects.filter(status="uncertain").values_list("pk", flat=True)
        ] == uncertain, why
        notifications_drain(budget_seconds=1)
    # Every address got its email once, whatever the server had when the worker died.
    received = sorted(m.to[0] for m in mail.outbox)
    assert len(received) == len(set(received)), "nobody twice"
    expected_missing = {emails[1]} if where == "sending" else set()
    assert set(emails) - set(received) == expected_missing, (reached, why)
    statuses = dict(Notification.objects.values_list("email", "status"))
    assert [statuses[e] for e in emails] == [
        "uncertain" if i + 1 in uncertain else "sent" for i in range(len(emails))
    ]


def _at_end_of_data(monkeypatch: pytest.MonkeyPatch, message: int, fault: str) -> None:
    """A real smtplib connection fails at its ``message``-th message: ``"data"``, the
    connection breaks half-way through the message's data (smtplib closes it and raises, as
    on a broken pipe); ``"killed"``, the worker dies right after the end of the data went;
    ``"no answer"``, the server takes the message but its answer never arrives."""
    send, getreply, ends = smtplib.SMTP.send, smtplib.SMTP.getreply, []

    def failing_send(self: smtplib.SMTP, s: Any) -> None:
        if fault == "data" and isinstance(s, bytes) and s != b".\r\n" and len(ends) == message - 1:
            self.sock.sendall(s[: len(s) // 2])
            self.close()
            raise smtplib.SMTPServerDisconnected("Server not connected")
        send(self, s)
        if s == b".\r\n":
            ends.append(1)
            if fault == "killed" and len(ends) == message:
                raise WorkerKilled

    def failing_getreply(self: smtplib.SMTP) -> tuple[int, bytes]:
        reply = getreply(self)
        if fault == "no answer" and len(ends) == message and reply[0] == 250:
            self.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return reply

    monkeypatch.setattr(smtplib.SMTP, "send", failing_send)
    monkeypatch.setattr(smtplib.SMTP, "getreply", failing_getreply)


@pytest.mark.parametrize(
    ("where", "uncertain", "missing", "why"),
    [
        ("RCPT", [1], [], "before its data nothing went: the second goes again; the first was last handed"),
        ("its data", [1], [], "its data went without its end, which the server drops: it goes again"),
        ("its hand-over", [2], [2], "handed over, its end not sent: the one instant that loses a message"),
        ("the end of its data", [2], [], "the server has it: uncertain, and it did arrive"),
    ],
)
@responses.activate
def test_over_smtp_a_message_is_handed_over_just_before_its_data_ends(
    site: WixSite,
    campaign: SaleStartCampaign,
    killed: None,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    where: str,
    uncertain: list[int],
    missing: list[int],
    why: str,
) -> None:
    from portal.mailsink import MailSink

    emails = _subscribers(site, 4)
    wix_consent(responses.mock, {e: ("SUBSCRIBED", "VALID") for e in emails})
    if where == "RCPT":
        _kill_at(monkeypatch, smtplib.SMTP, "rcpt", 2)
    elif where == "the end of its data":
        _at_end_of_data(monkeypatch, 2, "killed")
    else:  # the second hand-over, which comes once its data went: before it runs, or after
        _kill_at(monkeypatch, Delivery, "hand_over", 2, after=where == "its hand-over")
    with MailSink() as sink, time_machine.travel(START, tick=False) as traveller:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        campaigns_drain(budget_seconds=1)
        with pytest.raises(WorkerKilled):
            notifications_drain(budget_seconds=1)
        monkeypatch.undo()
        second = Notification.objects.get(email=emails[1])
        assert (second.handed_at is not None) is (where in ("its hand-over", "the end of its data"))
        traveller.shift(dt.timedelta(hours=1))
        notifications_release_stuck()
        notifications_drain(budget_seconds=1)
    received = [r[0] for r in sink.recipients]
    assert len(received) == len(set(received)), "nobody twice"
    assert sorted(set(emails) - set(received)) == [emails[i - 1] for i in missing], why
    statuses = [Notification.objects.get(email=e).status for e in emails]
    assert statuses == ["uncertain" if i + 1 in uncertain else "sent" for i in range(4)], why


def test_over_smtp_the_end_of_the_data_is_not_held_back_by_nagle(settings: Any) -> None:
    """It goes alone after the hand-over: without TCP_NODELAY it would wait for the ACK of the
    data before it (up to 40 ms when the server delays its ACKs)."""
    import socket

    from portal.mailsink import MailSink

    with MailSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        drain = Delivery()
        drain.open()
        try:
            assert drain.at_data
            sock = drain.connection.connection.sock
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        finally:
            drain.close()


@responses.activate
def test_over_smtp_a_message_whose_row_was_taken_from_its_worker_is_never_ended(
    site: WixSite, campaign: SaleStartCampaign, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """The worker was thought dead and its row released to another while its data went: it
    does not end that message (the server drops it) and goes on with the rest."""
    from portal.mailsink import MailSink

    emails = _subscribers(site, 3)
    wix_consent(responses.mock, {e: ("SUBSCRIBED", "VALID") for e in emails})
    real, calls = Delivery.hand_over, []

    def released_first(self: Delivery, pk: int, *args: Any, **kwargs: Any) -> bool:
        calls.append(pk)
        if len(calls) == 2:  # released as stuck, and another worker claimed it since
            Notification.objects.filter(pk=pk).update(claimed_at=START + dt.timedelta(minutes=9))
        return real(self, pk, *args, **kwargs)

    monkeypatch.setattr(Delivery, "hand_over", released_first)
    with MailSink() as sink, time_machine.travel(START, tick=False):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        campaigns_drain(budget_seconds=1)
        notifications_drain(budget_seconds=1)
    assert sorted(r[0] for r in sink.recipients) == [emails[0], emails[2]]
    second = Notification.objects.get(email=emails[1])
    assert (second.status, second.handed_at) == ("sending", None)  # the other worker's now


@pytest.mark.parametrize(
    ("phase", "status"),
    [
        ("rcpt", "sent"),  # nothing had gone: retried after its backoff, and sent once
        ("data", "sent"),  # half its data went, not its end: the server dropped it; retried
        ("no answer", "uncertain"),  # the message had gone, the answer never came: staff decide
    ],
)
@responses.activate
def test_a_connection_that_breaks_is_retried_only_if_the_message_had_not_gone(
    site: WixSite,
    campaign: SaleStartCampaign,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    phase: str,
    status: str,
) -> None:
    from portal.mailsink import MailSink

    emails = _subscribers(site, 3)
    wix_consent(responses.mock, {e: ("SUBSCRIBED", "VALID") for e in emails})
    if phase == "rcpt":
        broken = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        _kill_at(monkeypatch, smtplib.SMTP, "rcpt", 2, error=broken)
    else:
        _at_end_of_data(monkeypatch, 2, phase)
    with MailSink() as sink, time_machine.travel(START, tick=False) as traveller:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        campaigns_drain(budget_seconds=1)
        notifications_drain(budget_seconds=1)
        monkeypatch.undo()
        traveller.shift(dt.timedelta(hours=2))  # past the backoff
        notifications_drain(budget_seconds=1)
    assert sorted(r[0] for r in sink.recipients) == emails  # each once
    second = Notification.objects.get(email=emails[1])
    assert second.status == status
    if status == "uncertain":
        assert (
            "may or may not have arrived" in second.last_error and "unexpectedly closed" in second.last_error
        )
    else:
        assert second.attempts == 2


@responses.activate
def test_an_uncertain_row_is_sent_again_only_by_staff(
    site: WixSite, campaign: SaleStartCampaign, killed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.mail.backends.locmem import EmailBackend

    from notifications.services.sending import notifications_resend

    emails = _subscribers(site, 2)
    wix_consent(responses.mock, {e: ("SUBSCRIBED", "VALID") for e in emails})
    _kill_at(monkeypatch, EmailBackend, "send_messages", 1)
    with time_machine.travel(START, tick=False) as traveller:
        campaigns_drain(budget_seconds=1)
        with pytest.raises(WorkerKilled):
            notifications_drain(budget_seconds=1)
        monkeypatch.undo()
        traveller.shift(dt.timedelta(hours=1))
        assert notifications_release_stuck() == 2  # the one handed over, and the one never tried
        notifications_drain(budget_seconds=1)
        assert [m.to[0] for m in mail.outbox] == [emails[1]]
        row = Notification.objects.get(email=emails[0])
        assert row.status == "uncertain" and "may or may not have gone out" in row.last_error
        assert notifications_resend(notification_ids=[row.pk]) == 1
        notifications_drain(budget_seconds=1)
    assert sorted(m.to[0] for m in mail.outbox) == emails


@responses.activate
def test_nothing_is_sent_after_the_sale_ended_and_a_late_campaign_waits_for_staff(
    site: WixSite, campaign: SaleStartCampaign, settings: Any
) -> None:
    emails = _subscribers(site, 2)
    wix_consent(responses.mock, {e: ("SUBSCRIBED", "VALID") for e in emails})
    settings.NOTIFICATIONS_GRACE_MINUTES = 30
    with time_machine.travel(START + dt.timedelta(hours=2), tick=False):
        campaigns_drain(budget_seconds=1)
        campaign.refresh_from_db()
        assert campaign.status == "missed" and "grace" in campaign.last_error
        assert campaign_send_now(campaign_ids=[campaign.pk]) == 1
        campaigns_drain(budget_seconds=1)
        campaign.refresh_from_db()
        assert campaign.status == "sending"
    assert campaign.sale_end is not None
    with time_machine.travel(campaign.sale_end + dt.timedelta(minutes=1), tick=False):
        notifications_drain(budget_seconds=1)
    assert mail.outbox == []
    assert set(Notification.objects.values_list("status", "last_error")) == {("skipped", "the sale ended")}


@responses.activate
def test_a_wix_401_blocks_the_campaign_with_the_reason(site: WixSite, campaign: SaleStartCampaign) -> None:
    _subscribers(site, 1)
    responses.add(
        responses.POST,
        "https://wix.test/email-marketing/v1/email-subscriptions/query",
        status=401,
        json={"message": "Missing permission", "details": {"applicationError": {"code": "UNAUTHENTICATED"}}},
    )
    with time_machine.travel(START, tick=False):
        campaigns_drain(budget_seconds=1)
    campaign.refresh_from_db()
    assert campaign.status == "blocked" and "UNAUTHENTICATED" in campaign.blocked_reason
    assert not Notification.objects.exists()


@responses.activate
def test_an_uncertain_email_is_a_health_problem_until_staff_send_it_again(
    site: WixSite, campaign: SaleStartCampaign
) -> None:
    from notifications.services.sending import notifications_resend
    from portal.health import problems

    emails = _subscribers(site, 1)
    wix_consent(responses.mock, {e: ("SUBSCRIBED", "VALID") for e in emails})
    with time_machine.travel(START, tick=False) as traveller:
        campaigns_drain(budget_seconds=1)
        row = Notification.objects.get()
        jobs.claim(Notification, row.pk)  # a worker took it, handed it to the server, and died
        jobs.ClaimedUpdate(Notification, fields=["handed_at"])(row.pk, handed_at=START)
        traveller.shift(dt.timedelta(hours=1))
        notifications_release_stuck()
        assert [p.key for p in problems() if p.key == "uncertain_notifications"] == [
            "uncertain_notifications"
        ]
        assert notifications_resend(notification_ids=[row.pk]) == 1
        notifications_drain(budget_seconds=1)
    assert [m.to[0] for m in mail.outbox] == emails
    assert not [p for p in problems() if p.key == "uncertain_notifications"]


def test_the_hand_over_statement_writes_only_a_row_this_worker_holds(
    site: WixSite, campaign: SaleStartCampaign
) -> None:
    rows = Notification.objects.bulk_create(
        [Notification(campaign=campaign, email=f"p{i}@example.com", status="queued") for i in range(3)]
    )
    hand_over = jobs.ClaimedUpdate(Notification, fields=("handed_at", "message_id"))
    assert jobs.claim(Notification, rows[0].pk)
    assert hand_over(rows[0].pk, handed_at=START, message_id="<m0@x>") is True
    assert hand_over(rows[1].pk, handed_at=START, message_id="<m1@x>") is False  # never claimed
    jobs.finish(Notification, rows[0].pk, status="sent")
    assert hand_over(rows[0].pk, handed_at=START, message_id="<again@x>") is False  # settled since
    # Given its claim, a row released as stuck and claimed by another worker is not written.
    with time_machine.travel(START, tick=False):
        assert jobs.claim(Notification, rows[1].pk)
    mine = Notification.objects.get(pk=rows[1].pk).claimed_at
    assert hand_over(rows[1].pk, claim=mine, handed_at=START, message_id="<m1@x>") is True
    Notification.objects.filter(pk=rows[1].pk).update(claimed_at=START + dt.timedelta(minutes=9))
    assert hand_over(rows[1].pk, claim=mine, handed_at=BEFORE, message_id="<late@x>") is False
    assert list(Notification.objects.order_by("pk").values_list("status", "handed_at", "message_id")) == [
        ("sent", START, "<m0@x>"),
        ("sending", START, "<m1@x>"),
        ("queued", None, ""),
    ]
    with pytest.raises(TypeError):
        hand_over(rows[2].pk, handed_at=START)
