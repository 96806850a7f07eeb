"""What is broken in notifications, for ``portal.health``: overdue or stuck campaigns."""

from __future__ import annotations

from django.urls import reverse

from notifications.models import Notification, SaleStartCampaign
from portal import jobs
from portal.health import Problem


def overdue_campaigns() -> list[Problem]:
    """Campaigns due for over 5 minutes that nobody sent, or that wait for a staff decision."""
    late = jobs.overdue(SaleStartCampaign)
    waiting = SaleStartCampaign.objects.filter(
        status__in=(SaleStartCampaign.Status.BLOCKED, SaleStartCampaign.Status.MISSED)
    ).count()
    url = reverse("admin:notifications_salestartcampaign_changelist")
    return [
        Problem(
            "overdue_campaigns",
            late,
            f"{late} sale-start campaign(s) overdue: are the workers running?",
            url + "?status__exact=scheduled",
        ),
        Problem(
            "campaigns_need_staff",
            waiting,
            f"{waiting} sale-start campaign(s) blocked or missed: send now or cancel",
            url + "?status__in=blocked,missed",
        ),
    ]


def failed_notifications() -> list[Problem]:
    count = Notification.objects.filter(
        status__in=(Notification.Status.FAILED, Notification.Status.UNCERTAIN)
    ).count()
    url = reverse("admin:notifications_notification_changelist") + "?status__in=failed,uncertain"
    return [Problem("failed_notifications", count, f"{count} sale-start email(s) failed or uncertain", url)]
