"""``manage.py pretix_connect``: point the portal at a pretix and check the connection."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sync.services.pretix import pretix_connection_test, pretix_system_ensure


class Command(BaseCommand):
    help = "Create or update the pretix system (default mappings included) and test its connection."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="pretix's base URL, e.g. http://127.0.0.1:8345")
        parser.add_argument("--organizer", required=True, help="the organizer's short form, e.g. demo")
        parser.add_argument(
            "--token-env",
            default="EXTERNAL_PRETIX_TOKEN",
            help="the environment variable that holds the API token (never the token itself)",
        )
        parser.add_argument("--name", default="pretix")
        parser.add_argument("--currency", default="EUR")

    def handle(self, *args: Any, **options: Any) -> None:
        system = pretix_system_ensure(
            url=options["url"],
            organizer=options["organizer"],
            token_env=options["token_env"],
            name=options["name"],
            currency=options["currency"],
        )
        self.stdout.write(f"{system}: {system.mappings.count()} mappings")
        failed = False
        for check in pretix_connection_test(system):
            mark = {True: "ok", False: "MISSING", None: "later"}[check.ok]
            self.stdout.write(f"  [{mark}] {check.label}: {check.detail}")
            failed |= check.ok is False
        if failed:
            raise CommandError("pretix is not ready: see the checks above")
