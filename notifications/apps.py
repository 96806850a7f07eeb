from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Subscribers, sale-start emails and the live ticket counter (built on the sync mirrors)."""

    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from notifications.counters import velo
        from notifications.counters.services import counters_on_mirror_changed
        from notifications.models import CounterPush
        from notifications.sources.base import source_builder_register
        from notifications.sources.health import source_problems
        from notifications.sources.mailchimp import mailchimp_sources_for_site
        from notifications.sources.rest import rest_sources_for_site
        from portal import health
        from portal.jobs import JobKind, register
        from sync.services.mirrors import mirror_changed

        source_builder_register(mailchimp_sources_for_site)
        source_builder_register(rest_sources_for_site)
        health.register(source_problems)
        # Counters learn of sales through the mirror's signal (sync never imports us).
        mirror_changed.connect(counters_on_mirror_changed, dispatch_uid="notifications.counters")
        register(JobKind(CounterPush, velo.DRAIN_TASK))
