"""pretix: the admin's "test connection", which changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync.clients.base import CallList, RecordedHttp
from sync.clients.pretix.client import PretixClient, PretixConfig
from sync.clients.pretix.protocol import EVENT_META


@dataclass(frozen=True)
class ConnectionCheck:
    label: str
    ok: bool | None  # None: could not be checked yet
    detail: str


def pretix_connection_check(config: PretixConfig, *, timeout: float) -> list[ConnectionCheck]:
    """Check the token, the organizer and each permission the sync needs, changing nothing.

    A permission is probed with an empty create (or settings change): pretix checks the
    permission first and answers 403 without it, and 400 (nothing made) with it.
    """
    adapter = PretixClient(config)
    http = RecordedHttp(CallList(), timeout=timeout)
    checks: list[ConnectionCheck] = []

    def status(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = http.request(
            "check",
            method,
            f"{adapter.root}/{path}",
            json_body=body,
            headers=adapter._headers(),
            allow=tuple(range(300, 600)),
        )
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    try:
        code, _ = status("GET", "")
    except Exception as exc:  # no secret, no connection: say so, do not crash the admin
        return [ConnectionCheck("Reach pretix", False, str(exc))]
    if code == 401:
        return [ConnectionCheck("API token", False, "pretix rejected the token (401).")]
    if code != 200:
        return [
            ConnectionCheck("Organizer", False, f"No access to organizer {config.organizer!r} (HTTP {code}).")
        ]
    checks.append(ConnectionCheck("API token and organizer", True, f"Organizer {config.organizer!r}."))

    def probe(label: str, method: str, path: str, where: str = "") -> ConnectionCheck:
        """An empty write: 403 without the permission, 400 (nothing made) or 200 with it."""
        code, _ = status(method, path, {})
        return ConnectionCheck(label, code != 403, f"granted{where}" if code != 403 else "missing (403)")

    checks.append(probe("Create events", "POST", "events/"))
    checks.append(probe("Declare event properties (organizer settings)", "POST", "event_meta_properties/"))
    code, body = status("GET", "event_meta_properties/")
    names = {p.get("name") for p in (body or {}).get("results") or []} if code == 200 else set()
    checks.append(
        ConnectionCheck(
            f"Event property {EVENT_META}",
            True if EVENT_META in names else None,
            "declared" if EVENT_META in names else "not declared yet: the first push declares it",
        )
    )
    code, body = status("GET", "events/")
    slug = next((e.get("slug") for e in (body or {}).get("results") or []), None) if code == 200 else None
    if slug is None:
        checks.append(ConnectionCheck("Event permissions", None, "checked once pretix has an event"))
        return checks
    where = f" (checked on {slug})"
    checks.append(probe("Change items and quotas", "POST", f"events/{slug}/items/", where))
    checks.append(probe("Change event settings (confirm texts)", "PATCH", f"events/{slug}/settings/", where))
    return checks
