from django.apps import AppConfig
from django.conf import settings


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Wix sync"

    def ready(self) -> None:
        from portal import health
        from portal.jobs import JobKind, register
        from sync.models import (
            BackfillRun,
            BackfillStep,
            OutboundWork,
            ReconciliationRun,
            TargetAlert,
            TicketDefinitionRefresh,
            WebhookDelivery,
        )
        from sync.services import alerts, backfill, push, reconcile, ticket_refresh, webhooks
        from sync.services import health as sync_health

        workers = settings.Q_CLUSTER.get("workers", 1)
        register(JobKind(OutboundWork, push.DRAIN_TASK, release=push.push_release_stuck, drains=workers))
        register(JobKind(WebhookDelivery, webhooks.DRAIN_TASK, drains=workers))
        register(JobKind(BackfillRun, backfill.DRAIN_TASK, release=backfill.backfill_release_stuck))
        register(JobKind(BackfillStep, backfill.DRAIN_TASK, release=lambda: 0, drains=workers))
        register(JobKind(ReconciliationRun, reconcile.DRAIN_TASK))
        register(JobKind(TargetAlert, alerts.DRAIN_TASK))
        register(JobKind(TicketDefinitionRefresh, ticket_refresh.DRAIN_TASK, drains=workers))
        health.register(sync_health.sync_problems)
