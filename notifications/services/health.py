"""What is broken in notifications, for ``portal.health``: overdue or stuck campaigns."""

from __future__ import annotations

from django.urls import reverse

from notifications.models import CounterPush, Notification, SaleStartCampaign
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


def uncertain_notifications() -> list[Problem]:
    """Emails a killed worker may or may not have sent: staff decide (a failed address is the
    recipient's problem, shown on its campaign, not a problem of the portal)."""
    count = Notification.objects.filter(status=Notification.Status.UNCERTAIN).count()
    url = reverse("admin:notifications_notification_changelist") + "?status__exact=uncertain"
    return [
        Problem(
            "uncertain_notifications",
            count,
            f"{count} sale-start email(s) uncertain (a worker died sending them): send again or leave",
            url,
        )
    ]


def counter_push_problems() -> list[Problem]:
    """Counters whose latest push to a Velo site gave up (the site refused it, or stayed down
    past the retries): the page's own code shows an old value until the next change."""
    failed = jobs.dead_latest(CounterPush, by=("counter",))
    late = jobs.overdue(CounterPush)
    url = reverse("admin:notifications_counterpush_changelist")
    return [
        Problem(
            "counter_pushes_failed",
            failed,
            f"{failed} counter(s) could not be pushed to their Velo site",
            url + "?status__exact=failed",
        ),
        Problem(
            "overdue_counter_pushes",
            late,
            f"{late} counter push(es) waiting over 5 min: are the workers running?",
            url,
        ),
    ]
