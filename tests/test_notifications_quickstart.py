"""The quick start's mail sink and demo subscribers."""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from notifications.models import LocalSubscriber
from portal.mailsink import MailSink
from portal.management.commands.quickstart import Command

pytestmark = pytest.mark.django_db


def test_quickstart_puts_the_demo_subscribers_on_the_local_list(settings: object) -> None:
    settings.DEBUG = True  # type: ignore[attr-defined]
    call_command("quickstart", "--no-serve", stdout=StringIO())
    call_command("quickstart", "--no-serve", stdout=StringIO())  # idempotent
    assert LocalSubscriber.objects.count() == 8
    assert LocalSubscriber.objects.filter(unsubscribed=True).count() == 1


def test_the_mail_sink_keeps_messages_in_an_mbox_that_staff_read(
    tmp_path: Path, settings: object, admin_client: Client
) -> None:
    settings.MAIL_SINK_MBOX = tmp_path / "sink.mbox"  # type: ignore[attr-defined]
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@x.com", "b@x.com", "Hello sink"
    message["List-Unsubscribe"] = "<https://portal.example.com/notifications/unsubscribe/t/>"
    message.set_content("plain part")
    message.add_alternative("<p>html part</p>", subtype="html")
    sink = MailSink(mbox=settings.MAIL_SINK_MBOX).start()  # type: ignore[attr-defined]
    try:
        with smtplib.SMTP(sink.host, sink.port) as smtp:
            smtp.send_message(message)
    finally:
        sink.stop()
    assert [str(m["Subject"]) for m in sink.messages] == ["Hello sink"]
    page = admin_client.get("/mail-sink/").content.decode()
    assert (
        "Hello sink" in page
        and "plain part" in page
        and "https://portal.example.com/notifications/unsub" in page
    )
    assert Client().get("/mail-sink/").status_code == 302  # staff only


def test_email_host_or_port_in_the_environment_wins_over_the_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_HOST", "smtp.example.com")
    command = Command(stdout=StringIO())
    command._mail_sink_start()
    assert not hasattr(command, "_sink")
    assert "from the environment" in command.stdout.getvalue()  # type: ignore[attr-defined]


def test_without_email_settings_the_quick_start_starts_a_sink_and_points_email_at_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: object
) -> None:
    monkeypatch.delenv("EMAIL_HOST", raising=False)
    monkeypatch.delenv("EMAIL_PORT", raising=False)
    for name in ("EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT"):
        monkeypatch.setenv(name, "")  # restored after the test (the command sets them)
        monkeypatch.delenv(name)
    settings.MAIL_SINK_MBOX = tmp_path / "sink.mbox"  # type: ignore[attr-defined]
    command = Command(stdout=StringIO())
    command._mail_sink_start()
    try:
        assert os.environ["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
        assert int(os.environ["EMAIL_PORT"]) == command._sink.port
        with smtplib.SMTP("127.0.0.1", command._sink.port) as smtp:
            smtp.sendmail("a@x.com", ["b@x.com"], b"Subject: hi\r\n\r\nbody")
        assert settings.MAIL_SINK_MBOX.exists()  # type: ignore[attr-defined]
    finally:
        command._sink.stop()
