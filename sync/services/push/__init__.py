"""The one push path: backfill, webhook and resync all bring an entity up to date here.

For each active system: no link → create and store the link; link → update (skipped when
the mapped payload is unchanged); tombstone → delete and mark the link.

- ``enqueue``: a pending ``OutboundWork`` row per entity and system, then a wake-up;
- ``decide``: what a push would do (also the dry run);
- ``drain``: claim, prepare, send, complete, with retries from the job engine;
- ``links``: the ID link, written once, and what the system told us on the way;
- ``calls``: every HTTP call as a ``SyncLog`` row, "sending" before the request.
"""

from sync.services.push.calls import INTERRUPTED_NOTE, calls_store
from sync.services.push.decide import (
    PushCache,
    PushDecision,
    PushOutcome,
    entity_payload,
    push_decide,
    system_handles,
)
from sync.services.push.drain import (
    DRAIN_BUDGET_SECONDS,
    RETRY,
    push_drain,
    push_release_stuck,
    system_resume,
    work_execute,
    work_retry,
    work_retry_dead_since,
)
from sync.services.push.enqueue import DRAIN_TASK, push_enqueue

__all__ = [
    "DRAIN_BUDGET_SECONDS",
    "DRAIN_TASK",
    "INTERRUPTED_NOTE",
    "RETRY",
    "PushCache",
    "PushDecision",
    "PushOutcome",
    "calls_store",
    "entity_payload",
    "push_decide",
    "push_drain",
    "push_enqueue",
    "push_release_stuck",
    "system_handles",
    "system_resume",
    "work_execute",
    "work_retry",
    "work_retry_dead_since",
]
