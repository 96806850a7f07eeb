from django.apps import AppConfig
from django.conf import settings


class NotificationsConfig(AppConfig):
    """Subscribers, sale-start emails and the live ticket counter (built on the sync mirrors)."""

    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from notifications.counters import velo
        from notifications.counters.services import counters_on_mirror_changed
        from notifications.services import campaigns, consent, sending
        from notifications.services import health as notifications_health
        from notifications.sources.base import source_builder_register
        from notifications.sources.health import source_problems
        from notifications.sources.local import local_sources
        from notifications.sources.mailchimp import mailchimp_sources_for_site
        from notifications.sources.rest import rest_sources_for_site
        from portal import health
        from portal.jobs import JobKind, register
        from sync.services.mirrors import mirror_changed
        from sync.services.webhook_handlers import route_register

        from notifications.models import CounterPush, Notification, SaleStartCampaign  # isort: skip

        source_builder_register(local_sources)
        source_builder_register(mailchimp_sources_for_site)
        source_builder_register(rest_sources_for_site)
        health.register(source_problems)
        # Wix's Email Subscription Changed: stored and processed on sync's webhook path.
        route_register(
            route="email_subscription_changed",
            handler=consent.suppression_apply_from_wix,
            event_types=[consent.EMAIL_SUBSCRIPTION_CHANGED],
            entity_fqdns=[consent.EMAIL_SUBSCRIPTION_FQDN],
        )
        mirror_changed.connect(
            campaigns.campaigns_on_mirror_changed, dispatch_uid="notifications.campaigns_on_mirror_changed"
        )
        workers = settings.Q_CLUSTER.get("workers", 1)
        register(JobKind(SaleStartCampaign, sending.CAMPAIGN_DRAIN_TASK))
        register(
            JobKind(
                Notification,
                sending.SEND_DRAIN_TASK,
                release=sending.notifications_release_stuck,
                drains=workers,
            )
        )
        health.register(notifications_health.overdue_campaigns)
        health.register(notifications_health.uncertain_notifications)
        health.register(notifications_health.counter_push_problems)
        # Counters learn of sales through the mirror's signal (sync never imports us).
        mirror_changed.connect(counters_on_mirror_changed, dispatch_uid="notifications.counters")
        register(JobKind(CounterPush, velo.DRAIN_TASK))
