from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Subscribers, sale-start emails and the live ticket counter (built on the sync mirrors)."""

    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from notifications.counters import velo
        from notifications.counters.services import counters_on_mirror_changed
        from notifications.models import CounterPush
        from portal.jobs import JobKind, register
        from sync.services.mirrors import mirror_changed

        # Counters learn of sales through the mirror's signal (sync never imports us).
        mirror_changed.connect(counters_on_mirror_changed, dispatch_uid="notifications.counters")
        register(JobKind(CounterPush, velo.DRAIN_TASK))
