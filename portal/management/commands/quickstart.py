"""Run the whole portal on one machine: migrate, seed the sandbox, web server and worker together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sync.models import BackfillRun, WixSite
from sync.services.backfill import backfill_start


class Command(BaseCommand):
    help = "Migrate, seed the Wix sandbox, and run the web server and a django-q2 worker together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--addr", default=None, help="host:port to serve on (default from PORTAL_BASE_URL)."
        )
        parser.add_argument("--no-serve", action="store_true", help="Prepare everything, then exit.")

    def handle(self, *args: Any, addr: str | None, no_serve: bool, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database ready.")
        login = self._admin_login()
        if settings.PORTAL_SANDBOX:
            from sync.sandbox.demo import sandbox_seed

            site = sandbox_seed()
            from notifications.services.demo import demo_subscribers_seed

            demo_subscribers_seed(site=site)
            self._counter_demo(site)
            self._pretix_connect()
            if not site.backfill_runs.exists():
                run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.QUICKSTART)
                self.stdout.write(f"Sandbox seeded; backfill #{run.pk} queued for the worker.")
        addr = addr or settings.PORTAL_BASE_URL.split("://", 1)[-1]
        self.stdout.write(
            self.style.SUCCESS(f"\n  Admin: {settings.PORTAL_BASE_URL}/admin/   login: {login}\n")
        )
        if no_serve:
            return
        self._mail_sink_start()
        try:
            self._serve(addr)
        finally:
            if getattr(self, "_sink", None) is not None:
                self._sink.stop()

    def _mail_sink_start(self) -> None:
        """Sale-start emails go to a local mail sink (an SMTP server on 127.0.0.1 that keeps
        what it gets in var/mail/sink.mbox, shown at /mail-sink/), unless EMAIL_HOST or
        EMAIL_PORT is set in the environment: then they go there."""
        if os.environ.get("EMAIL_HOST") or os.environ.get("EMAIL_PORT"):
            self.stdout.write(
                f"Email goes to {settings.EMAIL_HOST}:{settings.EMAIL_PORT} (from the environment)."
            )
            return
        try:
            from portal.mailsink import MailSink
        except ImportError:
            self.stdout.write(
                "No mail sink (install the dev extras for aiosmtpd); emails print to the console."
            )
            return
        self._sink = MailSink(mbox=settings.MAIL_SINK_MBOX).start()
        os.environ.update(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST=self._sink.host,
            EMAIL_PORT=str(self._sink.port),
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"  Mail sink: {settings.PORTAL_BASE_URL}/mail-sink/ "
                f"(SMTP {self._sink.host}:{self._sink.port}, mbox {settings.MAIL_SINK_MBOX})\n"
            )
        )

    def _counter_demo(self, site: WixSite) -> None:
        """The live ticket counter ``demo`` on the sandbox's fixed-price VIP tickets (5 of them):
        "Buy tickets" on the sandbox's ticket definitions lowers it live."""
        from notifications.counters.services import counter_demo_ensure
        from sync.sandbox.demo import demo_id

        counter_demo_ensure(
            site=site,
            ticket_definition_wix_id=demo_id("td:spring-gala:vip"),
            origins=[settings.PORTAL_BASE_URL],
        )
        self.stdout.write(f"Ticket counter: {settings.PORTAL_BASE_URL}/counter/demo/page")

    def _pretix_connect(self) -> None:
        """With PRETIX_URL set, sync into that pretix too (its token in EXTERNAL_PRETIX_TOKEN)."""
        url = os.environ.get("PRETIX_URL", "")
        if not url:
            return
        call_command(
            "pretix_connect",
            url=url,
            organizer=os.environ.get("PRETIX_ORGANIZER", "demo"),
            token_env="EXTERNAL_PRETIX_TOKEN",  # noqa: S106 - a variable name, not the token
            stdout=self.stdout,
        )

    def _admin_login(self) -> str:
        User = get_user_model()
        password = os.environ.get("PORTAL_ADMIN_PASSWORD", "")
        if not password:
            if not settings.DEBUG:
                raise CommandError(
                    "Set PORTAL_ADMIN_PASSWORD (the demo's admin/admin login exists only in debug)."
                )
            password = "admin"  # noqa: S105 - development only, refused above outside debug
        user, created = User.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save()
            return f"admin / {password}"
        return "admin / (the password you set earlier)"

    def _serve(self, addr: str) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        children = [
            subprocess.Popen([*manage, "qcluster"]),  # noqa: S603
            subprocess.Popen([*manage, "runserver", addr, "--noreload"]),  # noqa: S603
        ]
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
        if not stopping:
            raise CommandError("The web server or the worker stopped; see the output above.")
