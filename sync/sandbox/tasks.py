from __future__ import annotations

from django.conf import settings

from sync.sandbox.services import sandbox_sale_transitions, sandbox_webhook_send


def sandbox_webhook_send_task(webhook_id: int) -> str:
    return sandbox_webhook_send(webhook_id=webhook_id)


def sandbox_sale_transitions_task() -> str:
    """Scheduled every minute by the sandbox's seed: announce sales that began or ended."""
    if not settings.PORTAL_SANDBOX:
        return "sandbox off"
    return f"sent {sandbox_sale_transitions()}"
