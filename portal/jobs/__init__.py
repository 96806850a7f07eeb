"""The one job engine: claim, defer, due, release, retry and drain, for every kind of work.

Every unit of background work (a push, a webhook delivery, a backfill of one event, a
sale-start email, ...) is a row of a model built on :class:`portal.models.Job`. django-q2
only wakes workers up; what is due, who owns it and when it is tried again live in the
row, so they survive a restart and show in the admin (pretix's webhook retries, healthchecks'
``sendalerts``, Saleor's deliveries work the same way).

- **claim**: a worker takes a row with one conditional update (``WAITING`` → ``CLAIMED``,
  ``attempts + 1``); only one worker can win it, so django-q2 delivering a task twice, or
  two drains meeting on one row, does the work once. A drain looks due rows up a batch at a
  time and claims them one by one; a row another drain won is simply passed over.
- **defer**: a failure that may pass is tried again after the kind's :class:`RetrySchedule`
  (data, with jitter from one place); past its end the caller gives up (``DEAD``).
- **release_stuck**: a row claimed longer ago than its limit lost its worker (killed, or
  the machine went away) and waits again.
- **retry**: staff send dead (or stuck) rows round again, recording who and why.
- **drain**: a bounded loop claiming due rows one by one and handing each to the kind's
  handler until none is due or the time budget is spent.
- **wake**: new rows ask for a drain after their transaction commits. Wake-ups are
  coalesced per process (one per :data:`WAKE_WINDOW`), and a woken drain lingers until the
  window after its wake-up has passed, so a row whose wake-up was coalesced away is still
  seen by the drain the first one started: no row waits for the scheduled sweep.

This module imports no app: each kind passes its model and, where it needs them, extra
filters (say, "no other row of the same entity in flight").
"""

from portal.jobs.drains import (
    LINGER_POLL,
    WAKE_MARGIN,
    WAKE_WINDOW,
    claim_batch,
    claimed_batches,
    claims,
    drain,
    unclaim,
    wake,
    wake_now,
    wakes_forget,
)
from portal.jobs.rows import (
    JITTER,
    ClaimedUpdate,
    RetrySchedule,
    claim,
    defer,
    due,
    finish,
    heartbeat,
    jittered,
    release_stuck,
    retry,
    stuck_after_default,
    wait,
)
from portal.jobs.sweep import OVERDUE_AFTER, JobKind, dead_latest, dispatch, kinds, overdue, register

__all__ = [
    "JITTER",
    "LINGER_POLL",
    "OVERDUE_AFTER",
    "WAKE_MARGIN",
    "WAKE_WINDOW",
    "ClaimedUpdate",
    "JobKind",
    "RetrySchedule",
    "claim",
    "claim_batch",
    "claimed_batches",
    "claims",
    "dead_latest",
    "defer",
    "dispatch",
    "drain",
    "due",
    "finish",
    "heartbeat",
    "jittered",
    "kinds",
    "overdue",
    "register",
    "release_stuck",
    "retry",
    "stuck_after_default",
    "unclaim",
    "wait",
    "wake",
    "wake_now",
    "wakes_forget",
]
