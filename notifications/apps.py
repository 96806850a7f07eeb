from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Subscribers, sale-start emails and the live ticket counter (built on the sync mirrors)."""

    name = "notifications"
    verbose_name = "Notifications"
