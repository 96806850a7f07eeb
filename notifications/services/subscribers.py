"""The local list in and out as CSV: an import that reports each bad row and keeps the good ones."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from notifications.models import LocalSubscriber
from notifications.sources.base import email_normalise
from sync.models import Event, WixSite

COLUMNS = ["email", "name", "events", "all_events", "unsubscribed", "consent_at", "consent_source"]
TRUE, FALSE = {"1", "true", "yes", "y"}, {"", "0", "false", "no", "n"}


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, what is wrong)


def _flag(value: str, column: str) -> bool:
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"{column} must be yes or no, not {value!r}")


def subscribers_import(*, site: WixSite, text: str, default_source: str = "CSV import") -> ImportReport:
    """Upsert one subscriber per row (by address); a bad row is reported and skipped.

    ``events`` lists Wix event ids or slugs separated by ``;``; ``all_events`` yes/no.
    """
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = {"email"} - set(reader.fieldnames or [])
    if missing:
        report.errors.append((1, "the header has no 'email' column"))
        return report
    by_slug = dict(Event.objects.filter(site=site).values_list("slug", "wix_id"))
    known_ids = set(by_slug.values())
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        try:
            email = email_normalise(row.get("email") or "")
            validate_email(email)
            if email in seen:
                raise ValueError(f"{email} appears twice in the file")
            seen.add(email)
            events = []
            for ref in (r.strip() for r in (row.get("events") or "").split(";")):
                if not ref:
                    continue
                wix_id = ref if ref in known_ids else by_slug.get(ref)
                if wix_id is None:
                    raise ValueError(f"no event {ref!r} on this site")
                events.append(wix_id)
            all_events = _flag(row.get("all_events") or "", "all_events")
            if not events and not all_events:
                raise ValueError("choose events or all_events=yes")
            consent_text = (row.get("consent_at") or "").strip()
            consent_at = parse_datetime(consent_text) if consent_text else timezone.now()
            if consent_at is None:
                raise ValueError(f"consent_at {consent_text!r} is not a date and time")
            if timezone.is_naive(consent_at):
                consent_at = timezone.make_aware(consent_at, dt.UTC)  # a time without a zone is UTC
            unsubscribed = _flag(row.get("unsubscribed") or "", "unsubscribed")
        except ValidationError:
            report.errors.append((line, f"{row.get('email')!r} is not an email address"))
            continue
        except ValueError as exc:
            report.errors.append((line, str(exc)))
            continue
        with transaction.atomic():
            _, created = LocalSubscriber.objects.update_or_create(
                site=site,
                email=email,
                defaults={
                    "name": (row.get("name") or "").strip()[:200],
                    "event_wix_ids": events,
                    "all_events": all_events,
                    "unsubscribed": unsubscribed,
                    "unsubscribed_at": timezone.now() if unsubscribed else None,
                    "consent_at": consent_at,
                    "consent_source": (row.get("consent_source") or default_source).strip()[:200],
                },
            )
        if created:
            report.created += 1
        else:
            report.updated += 1
    return report


def subscribers_export(*, subscribers: Iterable[LocalSubscriber]) -> str:
    """The same columns the import reads, so an export imports back unchanged."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for s in subscribers:
        writer.writerow(
            [
                s.email,
                s.name,
                ";".join(s.event_wix_ids or []),
                "yes" if s.all_events else "no",
                "yes" if s.unsubscribed else "no",
                s.consent_at.isoformat() if s.consent_at else "",
                s.consent_source,
            ]
        )
    return out.getvalue()
