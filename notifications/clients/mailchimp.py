"""Client for the Mailchimp Marketing API v3: an audience's members, tags and interests.

Facts this module relies on (https://mailchimp.com/developer/marketing/api/):
- The API lives at ``https://<dc>.api.mailchimp.com/3.0``; ``<dc>`` is the server prefix,
  also the end of an API key (``…-us6``). The key goes as HTTP Basic auth with any user name.
- Collections page with ``count`` (at most 1000) and ``offset``, and say ``total_items``; only
  reaching the total ends paging (a short page does not).
- Members: ``GET /lists/{list_id}/members`` filters by ``status`` (one value) and by an
  interest (``interest_category_id``, ``interest_ids``, ``interest_match``). Tags are static
  segments: ``GET /lists/{list_id}/segments?type=static`` names them, and
  ``GET /lists/{list_id}/segments/{segment_id}/members`` lists their members.
- A member is addressed by its subscriber hash, the MD5 of the lower-cased address;
  ``PATCH /lists/{list_id}/members/{hash}`` with ``{"status": "unsubscribed"}`` unsubscribes.
- Errors are RFC 7807 problem details (``application/problem+json``: ``type``, ``title``,
  ``status``, ``detail``, ``instance``); 401 is a wrong or revoked key, 403 a key that may not
  do this, 429 too many requests (https://mailchimp.com/developer/marketing/docs/errors/).

HTTP only: plain configuration in, dicts out. ``notifications.sources.mailchimp`` decides
what to read from the source's rules.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from django.conf import settings

from notifications.clients.base import RetryingHttp, SourceClientError

# Mailchimp's largest page.
PAGE_SIZE = 1000
# A safety stop against a server that pages forever.
MAX_PAGES = 10_000
_DC_RE = re.compile(r"^[a-z]{2,10}[0-9]{1,4}$")
MEMBER_FIELDS = "email_address,full_name,merge_fields.FNAME,merge_fields.LNAME,status"


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lower-cased address (not a security use)."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def server_prefix_of(api_key: str, server_prefix: str = "") -> str:
    """The data centre: the one configured, else the end of the key; refuses anything else."""
    prefix = server_prefix or api_key.rpartition("-")[2]
    if not _DC_RE.match(prefix):
        raise SourceClientError(
            "no server prefix (set one, or use a key ending in -us6 or the like)", permanent=True
        )
    return prefix


def member_name(member: dict[str, Any]) -> str:
    name = member.get("full_name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    merge = member.get("merge_fields") or {}
    parts = [merge.get("FNAME"), merge.get("LNAME")] if isinstance(merge, dict) else []
    return " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())


class MailchimpClient:
    def __init__(
        self,
        *,
        api_key: str,
        server_prefix: str = "",
        page_size: int = PAGE_SIZE,
        http: RetryingHttp | None = None,
    ) -> None:
        self.dc = server_prefix_of(api_key, server_prefix)
        self.base_url = settings.MAILCHIMP_API_URL.format(dc=self.dc).rstrip("/")
        self.page_size = min(page_size, PAGE_SIZE)
        self.http = http or RetryingHttp(label="Mailchimp")
        token = base64.b64encode(f"portal:{api_key}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}

    def _url(self, path: str, *ids: str) -> str:
        return self.base_url + path.format(*(quote(i, safe="") for i in ids))

    def _get(self, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        data = self.http.json(self.http.request("GET", url, headers=self.headers, params=params))
        if not isinstance(data, dict):
            raise SourceClientError(f"{self.http.label}: GET {url}: the answer is not a JSON object")
        return data

    def _paged(self, url: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a collection, ``count`` at a time, until ``total_items`` is reached."""
        offset = 0
        for _ in range(MAX_PAGES):
            data = self._get(url, {**params, "count": self.page_size, "offset": offset})
            items = data.get(key)
            total = data.get("total_items")
            if not isinstance(items, list) or not isinstance(total, int):
                raise SourceClientError(f"{self.http.label}: GET {url}: no '{key}' list or 'total_items'")
            yield from (item for item in items if isinstance(item, dict))
            offset += len(items)
            if offset >= total:
                return
            if not items:
                raise SourceClientError(
                    f"{self.http.label}: GET {url}: {total} in all but an empty page at offset {offset}"
                )
        raise SourceClientError(f"{self.http.label}: GET {url} did not finish after {MAX_PAGES} pages")

    # --- audiences -------------------------------------------------------------------
    def audience(self, list_id: str) -> dict[str, Any]:
        # https://mailchimp.com/developer/marketing/api/lists/get-list-info/
        return self._get(
            self._url("/lists/{}", list_id),
            {"fields": "id,name,stats.member_count,stats.unsubscribe_count,stats.cleaned_count"},
        )

    def members(
        self,
        list_id: str,
        *,
        status: str,
        interest_category_id: str = "",
        interest_id: str = "",
    ) -> Iterator[dict[str, Any]]:
        # https://mailchimp.com/developer/marketing/api/list-members/list-members-info/
        # Oldest sign-up first: a member who joins while we page lands after the pages read,
        # instead of shifting everyone along and making offset paging skip one.
        params: dict[str, Any] = {
            "status": status,
            "fields": _fields("members", MEMBER_FIELDS),
            "sort_field": "timestamp_signup",
            "sort_dir": "ASC",
        }
        if interest_category_id:
            params |= {
                "interest_category_id": interest_category_id,
                "interest_ids": interest_id,
                "interest_match": "any",
            }
        return self._paged(self._url("/lists/{}/members", list_id), "members", params)

    # --- tags (static segments) ------------------------------------------------------
    def tags(self, list_id: str) -> Iterator[dict[str, Any]]:
        # https://mailchimp.com/developer/marketing/api/list-segments/list-segments/
        params = {"type": "static", "fields": _fields("segments", "id,name,member_count")}
        return self._paged(self._url("/lists/{}/segments", list_id), "segments", params)

    def tag_members(self, list_id: str, segment_id: str) -> Iterator[dict[str, Any]]:
        # https://mailchimp.com/developer/marketing/api/list-segment-members/list-members-in-segment/
        # Unsubscribed and cleaned members are left out unless asked for (include_* default false).
        params = {"fields": _fields("members", MEMBER_FIELDS)}
        return self._paged(self._url("/lists/{}/segments/{}/members", list_id, segment_id), "members", params)

    # --- interests (groups) ------------------------------------------------------------
    def interest_categories(self, list_id: str) -> Iterator[dict[str, Any]]:
        # https://mailchimp.com/developer/marketing/api/interest-categories/list-interest-categories/
        params = {"fields": _fields("categories", "id,title")}
        return self._paged(self._url("/lists/{}/interest-categories", list_id), "categories", params)

    def interests(self, list_id: str, category_id: str) -> Iterator[dict[str, Any]]:
        # https://mailchimp.com/developer/marketing/api/interests/list-interests-in-category/
        url = self._url("/lists/{}/interest-categories/{}/interests", list_id, category_id)
        return self._paged(url, "interests", {"fields": _fields("interests", "id,name,subscriber_count")})

    # --- write-back --------------------------------------------------------------------
    def member_unsubscribe(self, list_id: str, email: str) -> bool:
        """Unsubscribe a member; False when the address is not in the audience (404)."""
        # https://mailchimp.com/developer/marketing/api/list-members/update-list-member/
        url = self._url("/lists/{}/members/{}", list_id, subscriber_hash(email))
        response = self.http.request(
            "PATCH", url, headers=self.headers, json={"status": "unsubscribed"}, allow=(404,)
        )
        return response.status_code != 404


def _fields(collection: str, fields: str) -> str:
    """Mailchimp's ``fields`` for a page: the items' fields and the total (smaller answers)."""
    return ",".join([f"{collection}.{f}" for f in fields.split(",")] + ["total_items"])
