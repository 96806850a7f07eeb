"""Demo data for the sandbox: a few events with policies and every kind of ticket price."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sync.models import WixSite
from sync.sandbox.models import SandboxEntity
from sync.sandbox.services import (
    SANDBOX_INSTANCE_ID,
    SANDBOX_SITE_ID,
    Kind,
    _iso,
    entity_create,
    sandbox_key,
)

_NS = uuid.UUID("2f1a7c36-3b0e-4a8e-9c55-3c1d1e5e9a10")


def demo_id(name: str) -> str:
    """Stable ids, so that re-seeding and tests can name demo entities."""
    return str(uuid.uuid5(_NS, name))


def _money(value: str) -> dict[str, str]:
    return {"value": value, "currency": "EUR"}


def _event(slug: str, title: str, starts_in: dt.timedelta, now: dt.datetime, venue: str) -> dict[str, Any]:
    start = now + starts_in
    return {
        "id": demo_id(f"event:{slug}"),
        "title": title,
        "slug": slug,
        "status": "UPCOMING",
        "instanceId": SANDBOX_INSTANCE_ID,
        "dateAndTimeSettings": {
            "dateAndTimeTbd": False,
            "startDate": _iso(start),
            "endDate": _iso(start + dt.timedelta(hours=4)),
            "timeZoneId": "Europe/Lisbon",
            "hideEndDate": False,
            "showTimeZone": True,
            "recurrenceStatus": "ONE_TIME",
        },
        "location": {"name": venue, "type": "VENUE"},
        "registration": {"initialType": "TICKETING"},
        "shortDescription": f"{title} at {venue}.",
    }


def demo_entities(now: dt.datetime) -> list[tuple[str, dict[str, Any]]]:
    day = dt.timedelta(days=1)
    gala = _event("spring-gala", "Spring Gala", 30 * day, now, "Teatro Nacional")
    jazz = _event("jazz-night", "Jazz Night", 60 * day, now, "Hot Clube")
    cinema = _event("open-air-cinema", "Open Air Cinema", 14 * day, now, "Jardim da Estrela")
    started = {"startDate": _iso(now - 7 * day), "endDate": _iso(now + 13 * day), "displayNotOnSale": True}

    def policy(event: dict[str, Any], key: str, name: str, body: str) -> tuple[str, dict[str, Any]]:
        return Kind.POLICY, {
            "id": demo_id(f"policy:{event['slug']}:{key}"),
            "eventId": event["id"],
            "name": name,
            "body": body,
        }

    def ticket(event: dict[str, Any], key: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        return Kind.TICKET_DEFINITION, {
            "id": demo_id(f"td:{event['slug']}:{key}"),
            "eventId": event["id"],
            "feeType": "FEE_ADDED_AT_CHECKOUT",
            **fields,
        }

    return [
        (Kind.EVENT, gala),
        (Kind.EVENT, jazz),
        (Kind.EVENT, cinema),
        policy(
            gala,
            "refund",
            "Refund policy",
            "<p>Full refund up to 7 days before the event; 50% afterwards.</p>",
        ),
        policy(
            gala, "conduct", "Code of conduct", "<p>Be kind. Harassment of any kind is not tolerated.</p>"
        ),
        policy(jazz, "age", "Age restriction", "<p>Guests must be 16 or older.</p>"),
        policy(cinema, "refund", "Refund policy", "<p>No refunds within 48 hours of the screening.</p>"),
        policy(
            cinema, "weather", "Weather", "<p>Rain or shine; a storm moves the screening to the next day.</p>"
        ),
        policy(cinema, "access", "Accessibility", "<p>Step-free access through the north gate.</p>"),
        ticket(
            gala,
            "ga",
            name="General Admission",
            description="Standing area, doors at 19:00.",
            initialLimit=200,
            pricingMethod={"fixedPrice": _money("25.00")},
            salePeriod=started,
        ),
        ticket(
            gala,
            "vip",
            name="VIP",
            description="Front rows and a glass of port.",
            initialLimit=5,
            pricingMethod={"fixedPrice": _money("120.00")},
            salePeriod=started,
            feeType="FEE_INCLUDED",
        ),
        ticket(
            gala,
            "seated",
            name="Seated",
            description="Choose adult or child price.",
            pricingMethod={
                "pricingOptions": {
                    "optionDetails": [
                        {"optionId": demo_id("opt:gala:adult"), "name": "Adult", "price": _money("40.00")},
                        {"optionId": demo_id("opt:gala:child"), "name": "Child", "price": _money("20.00")},
                    ]
                }
            },
            initialLimit=120,
            feeType="FEE_INCLUDED",
        ),
        ticket(
            jazz,
            "early",
            name="Early bird",
            description="The first 50 tickets.",
            initialLimit=50,
            pricingMethod={"fixedPrice": _money("15.00")},
            # The demo's sale start two minutes after the quick start: one sale-start email each.
            salePeriod={
                "startDate": _iso(now + dt.timedelta(minutes=2)),
                "endDate": _iso(now + 20 * day),
                "displayNotOnSale": True,
            },
        ),
        ticket(
            jazz,
            "standard",
            name="Standard",
            pricingMethod={
                "pricingOptions": {
                    "optionDetails": [
                        {"optionId": demo_id("opt:jazz:adult"), "name": "Adult", "price": _money("30.00")},
                        {
                            "optionId": demo_id("opt:jazz:student"),
                            "name": "Student",
                            "price": _money("18.00"),
                        },
                    ]
                }
            },
            initialLimit=150,
        ),
        ticket(
            jazz,
            "supporter",
            name="Supporter",
            description="Pay what you want, from 10.",
            pricingMethod={"guestPrice": _money("10.00")},
        ),
        ticket(
            cinema,
            "free",
            name="Free entry",
            initialLimit=300,
            pricingMethod={"fixedPrice": _money("0")},
            feeType="NO_FEE",
            salePeriod=started,
        ),
        ticket(
            cinema,
            "blanket",
            name="Blanket spot",
            initialLimit=40,
            hidden=True,
            pricingMethod={"fixedPrice": _money("8.50")},
            salePeriod=started,
        ),
    ]


def sandbox_site_ensure() -> WixSite:
    """The portal's configuration for the sandbox site, pointing at this server."""
    site, _ = WixSite.objects.update_or_create(
        site_id=SANDBOX_SITE_ID,
        defaults={
            "name": "Sandbox Wix site",
            "instance_id": SANDBOX_INSTANCE_ID,
            "auth_method": WixSite.AuthMethod.API_KEY,
            "api_key_env": "WIX_SANDBOX_API_KEY",
            "api_base_url": f"{settings.PORTAL_BASE_URL}/sandbox/wix",
            "webhook_public_keys": sandbox_key().public_pem,
        },
    )
    return site


def sandbox_seed(*, now: dt.datetime | None = None) -> WixSite:
    """Fill an empty sandbox with the demo data (no webhooks: the backfill does the first upload)."""
    now = now or timezone.now()
    with transaction.atomic():
        if not SandboxEntity.objects.exists():
            for offset, (kind, data) in enumerate(demo_entities(now)):
                # Distinct createdDates keep Wix's createdDate ordering meaningful.
                entity_create(
                    kind=kind, data=data, webhooks=False, created=now + dt.timedelta(milliseconds=offset)
                )
        from sync.sandbox.ticketing import sandbox_ticketing_ensure

        sandbox_ticketing_ensure()
        from sync.sandbox.subscriptions import subscriptions_demo_seed

        subscriptions_demo_seed()
        _sale_transitions_schedule()
        return sandbox_site_ensure()


def _sale_transitions_schedule() -> None:
    """Wix announces each sale that begins or ends; the sandbox looks every minute."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="sandbox: announce sale starts and ends",
        defaults={
            "func": "sync.sandbox.tasks.sandbox_sale_transitions_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
