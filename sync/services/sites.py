"""Wix sites: the client that speaks to one, built from its row and the environment."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from portal.secrets import secret_read
from sync.clients.wix import WixAuth, WixClient
from sync.models import WixSite


def site_wix_client(site: WixSite, *, fail_fast: bool = False, **overrides: Any) -> WixClient:
    """A client for this site; secrets are read from the environment only now.

    ``fail_fast``: inside a worker, a call that would have to wait long (Wix asks for a pause,
    or keeps failing) raises at once and the job engine keeps the wait in the row
    (``not_before``) instead of a worker sleeping through it.
    """
    if site.auth_method == WixSite.AuthMethod.API_KEY:
        auth = WixAuth(api_key=secret_read(site.api_key_env, prefix="WIX_"))
    else:
        auth = WixAuth(
            app_id=site.app_id,
            app_secret=secret_read(site.app_secret_env, prefix="WIX_"),
            instance_id=site.instance_id,
        )
    options: dict[str, Any] = {
        "site_id": site.site_id,
        "auth": auth,
        "base_url": site.api_base_url or settings.WIX_API_BASE_URL,
        "path_family": site.path_family,
        "paging": site.paging,
        "fail_fast": fail_fast,
    }
    options.update(overrides)
    return WixClient(**options)
