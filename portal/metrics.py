"""Prometheus metrics: latency histograms recorded where things happen, counts read at scrape.

Histograms live in prometheus_client's multi-process mode (``PROMETHEUS_MULTIPROC_DIR``, set
by the settings before this module is imported), so every gunicorn worker and every
django-q2 worker add to the same series. Counts (rows per job kind and status, problems) are
read from the database when Prometheus scrapes, so they agree with ``/healthz`` and the
dashboard. This module imports no app: kinds of job and problems come from their registries.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from django.db.models import Count
from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from portal import health, jobs

# Wix wants its 200 within 1.25 s; the buckets resolve what is usual (a few ms) and that limit.
WEBHOOK_ACK_SECONDS = Histogram(
    "portal_webhook_ack_seconds",
    "Time from a webhook's arrival to its answer.",
    ["status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.25, 2.5),
)
PUSH_LAG_SECONDS = Histogram(
    "portal_push_lag_seconds",
    "Time from a change on Wix (the webhook's eventTime) to its successful push.",
    ["system"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600),
)


class _Counts(Collector):
    """Rows of every kind of job by status, and the problems ``/healthz`` reports."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = GaugeMetricFamily(
            "portal_jobs", "Rows of each kind of job, by status.", labels=["kind", "status"]
        )
        for kind in jobs.kinds():
            model = kind.model
            label = model._meta.label
            for entry in model._default_manager.values("status").annotate(n=Count("pk")).order_by():
                rows.add_metric([label, entry["status"]], entry["n"])
        yield rows
        found = GaugeMetricFamily("portal_problems", "What needs staff now (as /healthz).", labels=["key"])
        for problem in health.problems():
            found.add_metric([problem.key], problem.count)
        yield found


def metrics_text() -> bytes:
    """The exposition for one scrape."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:  # a single process (tests without the directory): its own histograms
        registry.register(WEBHOOK_ACK_SECONDS)
        registry.register(PUSH_LAG_SECONDS)
    registry.register(_Counts())
    return generate_latest(registry)
