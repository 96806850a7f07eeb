"""Refused webhooks cost no database write: counted in the cache, flushed to the site later.

A flood of forged bodies must neither fill the database nor make it the bottleneck, so:

- each client address's refusals are counted in a fixed window; past
  ``WEBHOOK_REJECT_LIMIT`` the address gets 429 without its body being read;
- each site's refusals (the statistic staff see on the site) are counted in the cache too
  and added to the row by :func:`webhook_rejections_flush`, which the webhook dispatcher
  runs every minute and the site admin runs before it shows the count.

With Redis (``REDIS_URL``) the counters are shared by every web process; with the local
memory cache each process counts alone, so the limit is per process.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from sync.models import WixSite

_ADDRESS = "webhooks:refused:address:{}"
_SITE = "webhooks:refused:site:{}"
_SITE_AT = "webhooks:refused:site-at:{}"


def _incr(key: str, timeout: int | None) -> int:
    """Add one; the first refusal starts the key's window (``incr`` keeps its expiry)."""
    if cache.add(key, 1, timeout=timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1


def address_blocked(address: str) -> bool:
    return (cache.get(_ADDRESS.format(address)) or 0) >= settings.WEBHOOK_REJECT_LIMIT


def address_refused(address: str) -> None:
    _incr(_ADDRESS.format(address), settings.WEBHOOK_REJECT_WINDOW_SECONDS)


def site_refused(site_id: int) -> None:
    _incr(_SITE.format(site_id), None)
    cache.set(_SITE_AT.format(site_id), timezone.now().isoformat(), timeout=None)


def webhook_rejections_flush() -> int:
    """Add the cached refusal counts to their sites' rows; returns how many were added."""
    site_ids = list(WixSite.objects.values_list("pk", flat=True))
    counts = cache.get_many([_SITE.format(pk) for pk in site_ids])
    added = 0
    for site_id in site_ids:
        count = counts.get(_SITE.format(site_id)) or 0
        if not count:
            continue
        cache.decr(_SITE.format(site_id), count)  # refusals counted meanwhile stay for the next flush
        last = parse_datetime(cache.get(_SITE_AT.format(site_id)) or "") or timezone.now()
        WixSite.objects.filter(pk=site_id).update(
            webhooks_rejected=F("webhooks_rejected") + count, webhook_last_rejected_at=last
        )
        added += count
    return added
