from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from sync.models import BackfillRun, WixSite
from sync.services.backfill import backfill_execute, backfill_start


class Command(BaseCommand):
    help = "Backfill Wix events, policies and ticket definitions into the mirrors (queued for the worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--site", help="Site: its Wix site id, its name or its primary key (default: every active site)."
        )
        parser.add_argument("--event", action="append", default=[], help="Wix event id; repeat for several.")
        parser.add_argument(
            "--now", action="store_true", help="Run here and now instead of queueing for the worker."
        )

    def handle(self, *args: Any, site: str | None, event: list[str], now: bool, **options: Any) -> None:
        sites = WixSite.objects.filter(is_active=True)
        if site:
            lookup = Q(site_id=site) | Q(name=site)
            if site.isdigit():
                lookup |= Q(pk=int(site))
            sites = sites.filter(lookup)
            if not sites.exists():
                raise CommandError(f"No active site matches {site!r}.")
        elif event and sites.count() > 1:
            raise CommandError("--event needs --site when more than one site is active.")
        if not sites.exists():
            raise CommandError("No active Wix site is configured.")
        for wix_site in sites:
            for event_id in event or [""]:
                run, created = backfill_start(
                    site=wix_site, event_wix_id=event_id, trigger=BackfillRun.Trigger.COMMAND
                )
                verb = "queued" if created else "already active"
                self.stdout.write(
                    f"Backfill #{run.pk} of {wix_site.name} ({event_id or 'all events'}): {verb}"
                )
                if now and created:
                    outcome = backfill_execute(run_id=run.pk)
                    run.refresh_from_db()
                    self.stdout.write(
                        f"  {outcome}: fetched {run.fetched}, created {run.created}, updated {run.updated}, "
                        f"unchanged {run.unchanged}, failed {run.failed}"
                    )
                    for error in run.errors:
                        self.stderr.write(f"  {error['where']}: {error['error']}")
