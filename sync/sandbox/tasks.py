from __future__ import annotations

from sync.sandbox.services import sandbox_webhook_send


def sandbox_webhook_send_task(webhook_id: int) -> str:
    return sandbox_webhook_send(webhook_id=webhook_id)
