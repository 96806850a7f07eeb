"""Every HTTP call of a push as a ``SyncLog`` row: written "sending" before the request goes
out and finished after, so that a worker killed mid-call still leaves the call in the log."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from django.db import transaction
from django.utils import timezone

from sync.clients.base import CallRecord
from sync.models import OutboundWork, SyncLog

INTERRUPTED_NOTE = (
    "The worker stopped during this call: the target may or may not have applied it. "
    "The work was returned to the queue and is pushed again; a create is safe to repeat (an "
    "Idempotency-Key, or pretix's look-up by Wix id)."
)
_ROW_FIELDS = ["status", "http_status", "duration_ms", "response_excerpt", "error", "note"]


class ClaimLost(Exception):
    """The work was released as stuck while this worker still held it, and another worker may
    have it now: this worker must send nothing more and record nothing on the work."""


def _row_save(row: SyncLog) -> None:
    """Store a call's "sending" row, fenced by the claim: the work must still be claimed with
    the ``claimed_at`` this worker read, which is renewed in the same transaction (so a long
    push is not released mid-call). A worker that was slow enough to be released as stuck
    finds a different ``claimed_at`` (or none) and raises :class:`ClaimLost` before its
    request goes out, so it can never send an older payload after the new owner's newer one."""
    work = row.work
    now = timezone.now()
    with transaction.atomic():
        renewed = OutboundWork.objects.filter(
            pk=work.pk, status=OutboundWork.Status.IN_FLIGHT, claimed_at=work.claimed_at
        ).update(claimed_at=now)
        if not renewed:
            raise ClaimLost(f"work {work.pk} was released while this worker held it")
        row.save()
    work.claimed_at = now


def _row_of(work: OutboundWork, record: CallRecord, **fields: Any) -> SyncLog:
    return SyncLog(
        work=work,
        system_id=work.system_id,
        entity_type=work.entity_type,
        wix_id=work.wix_id,
        trigger=work.trigger,
        action=record.action,
        request_excerpt=record.request,
        **fields,
    )


def _status_of(record: CallRecord) -> str:
    if record.permanent is None:
        return SyncLog.Status.SUCCESS
    return SyncLog.Status.PERMANENT if record.permanent else SyncLog.Status.RETRYABLE


class CallRows:
    """A push's recorder: each call's "sending" row before the request, finished by
    :meth:`finish` once the push is recorded.

    ``write`` stores the "sending" row and returns only once it is committed. In a drain it
    is the drain's :class:`Desk`, so that the sending thread never touches the database.
    """

    def __init__(self, work: OutboundWork, write: Callable[[SyncLog], None] = _row_save) -> None:
        self.work = work
        self.write = write
        self.rows: list[tuple[CallRecord, SyncLog]] = []

    def started(self, record: CallRecord) -> None:
        row = _row_of(self.work, record, status=SyncLog.Status.SENDING)
        self.write(row)
        self.rows.append((record, row))

    def finished(self, record: CallRecord) -> None:
        pass  # the record is completed in place; finish() writes it to its row

    def finish(self, *, error: str) -> None:
        """Fill each "sending" row with how its call ended. A call that raised something other
        than a connection error or timeout never finished its record: it failed with ``error``."""
        for record, row in self.rows:
            row.http_status, row.duration_ms = record.http_status, record.duration_ms
            row.response_excerpt, row.note, row.error = record.response, record.note, record.error
            if record.permanent is None and record.http_status is None:
                row.status, row.error = SyncLog.Status.PERMANENT, error
            else:
                row.status = _status_of(record)
            # One plain UPDATE per call (a push makes one or a few): cheaper than bulk_update's CASE.
            SyncLog.objects.filter(pk=row.pk).update(**{name: getattr(row, name) for name in _ROW_FIELDS})


class Desk:
    """Database writes a drain's sending thread asks for, done by the drain's own thread.

    Before each request the sending thread hands its "sending" row here and waits until the
    drain's thread, which holds the one database connection, has written it. The drain
    serves the desk whenever it waits for the sending thread, and first thing after handing
    it a push, so a request is held up by one INSERT, not by the drain's other work.
    """

    def __init__(self) -> None:
        self._asks: queue.SimpleQueue[tuple[SyncLog, Future[None]] | None] = queue.SimpleQueue()

    def write(self, row: SyncLog) -> None:
        """Sending thread: have ``row`` saved; raises what the save raised (nothing is sent then)."""
        done: Future[None] = Future()
        self._asks.put((row, done))
        done.result()

    def serve(self, until: Future[Any] | None = None, *, first: bool = False) -> None:
        """Drain's thread: write what was asked. With ``until``, keep serving until it is done
        (or, with ``first``, until one row is written)."""
        if until is not None:
            until.add_done_callback(lambda _: self._asks.put(None))  # wakes the wait below
        while True:
            if until is None or until.done():
                try:
                    item = self._asks.get_nowait()
                except queue.Empty:
                    return
            else:
                item = self._asks.get()
            if item is None:
                continue
            row, done = item
            try:
                _row_save(row)
            except Exception as exc:  # the push fails with it (nothing is sent); the drain goes on
                done.set_exception(exc)
                continue
            done.set_result(None)
            if first:
                return


def calls_store(*, work: OutboundWork, records: Iterable[CallRecord]) -> None:
    """Calls made for a unit of work outside a push (a staff fix), as its SyncLog rows."""
    SyncLog.objects.bulk_create(
        _row_of(
            work,
            r,
            http_status=r.http_status,
            duration_ms=r.duration_ms,
            response_excerpt=r.response,
            error=r.error,
            note=r.note,
            status=_status_of(r),
        )
        for r in records
    )


def calls_interrupted(*, work_id: int) -> int:
    """The calls of a work whose worker died that are still "sending": they never got an
    answer the worker lived to record."""
    return SyncLog.objects.filter(work_id=work_id, status=SyncLog.Status.SENDING).update(
        status=SyncLog.Status.INTERRUPTED, error=INTERRUPTED_NOTE
    )
