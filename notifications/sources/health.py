"""The sources' problems for the console's banner, /healthz and /metrics (``portal.health``).

Only what can be seen without a call: an active source whose secret variable is not set
would block every campaign that reads it, so staff hear of it before the first one does.
"""

from __future__ import annotations

from django.urls import reverse

from notifications.models import MailchimpSource, RestSource
from portal.health import Problem
from portal.secrets import MissingSecret, secret_read


def _unset(name: str) -> bool:
    try:
        secret_read(name, prefix="MARKETING_")
    except MissingSecret:
        return True
    return False


def source_problems() -> list[Problem]:
    problems = []
    mailchimp = [c.name for c in MailchimpSource.objects.filter(is_active=True) if _unset(c.api_key_env)]
    if mailchimp:
        problems.append(
            Problem(
                "source_secret_missing",
                len(mailchimp),
                f"{len(mailchimp)} Mailchimp source(s) without their API key variable: "
                + ", ".join(mailchimp),
                reverse("admin:notifications_mailchimpsource_changelist"),
            )
        )
    rest = [
        c.name
        for c in RestSource.objects.filter(is_active=True).exclude(auth_kind=RestSource.Auth.NONE)
        if _unset(c.auth_secret_env)
    ]
    if rest:
        problems.append(
            Problem(
                "source_secret_missing",
                len(rest),
                f"{len(rest)} REST source(s) without their secret variable: {', '.join(rest)}",
                reverse("admin:notifications_restsource_changelist"),
            )
        )
    return problems
