"""Guard rails for the django-q2 configuration.

django-q2 hands an unacknowledged task out again after ``retry`` seconds. If a task may
run longer than that (``timeout`` >= ``retry``, or no timeout at all), a second worker
starts the same task while the first is still running: at best wasted work, at worst a
double send. An unlimited ``max_attempts`` turns a task that always crashes its worker
into an endless loop. Both are refused at start-up, with a message that says why.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured


def q_cluster_validate(conf: dict[str, Any]) -> None:
    timeout = conf.get("timeout")
    retry = conf.get("retry", 60)  # django-q2's own default
    max_attempts = conf.get("max_attempts", 0)  # django-q2 treats 0 as unlimited
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ImproperlyConfigured(
            f"Q_CLUSTER['timeout'] is {timeout!r}: set a positive number of seconds. Without a timeout "
            "a task can outlive 'retry' and django-q2 would hand it to a second worker while the first "
            "still runs."
        )
    if not isinstance(retry, int | float) or retry <= timeout:
        raise ImproperlyConfigured(
            f"Q_CLUSTER['retry'] ({retry!r}) must be greater than 'timeout' ({timeout!r}): django-q2 "
            "re-delivers a task after 'retry' seconds, so a shorter retry runs the same task twice at once."
        )
    if not isinstance(max_attempts, int) or max_attempts <= 0:
        raise ImproperlyConfigured(
            f"Q_CLUSTER['max_attempts'] is {max_attempts!r}: set a positive limit. 0 means unlimited, "
            "and a task that kills its worker would then be retried forever."
        )
