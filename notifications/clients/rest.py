"""Client for a generic REST subscriber API: GET a URL, page through the answers, yield items.

Staff describe the API (``notifications.models.RestSource``); this module only fetches. The
items are returned as the API sent them: reading an address, a name, a status and events
out of them is the source's job (``notifications.sources.rest``).

Paging: one answer; a next-page link found in the answer (followed only on the configured
URL's own scheme and host, so that an answer cannot send our credential elsewhere); an
offset and limit; or a page number. Offset and page paging stop at the total when the answer
says where it is, else at the first short page.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from notifications.clients.base import RetryingHttp, SourceClientError

# A safety stop against a server that pages forever.
MAX_PAGES = 10_000


def json_path_get(data: Any, path: str) -> Any:
    """The value at a dotted path ("data.items", "tags.0", JSONPath-style "$.data"); None if absent."""
    if path.startswith("$."):
        path = path[2:]
    if not path or path == "$":
        return data
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return data


@dataclass(frozen=True)
class RestListing:
    url: str
    items_path: str = ""
    paging: str = "none"  # none | next_link | offset | page
    next_path: str = ""
    offset_param: str = "offset"
    limit_param: str = "limit"
    page_param: str = "page"
    page_size: int = 100
    total_path: str = ""


@dataclass(frozen=True)
class RestAuth:
    """``kind``: none, bearer, basic or header; ``secret`` already read from the environment."""

    kind: str = "none"
    secret: str = ""
    username: str = ""
    header: str = ""

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.kind == "bearer":
            headers["Authorization"] = f"Bearer {self.secret}"
        elif self.kind == "basic":
            token = base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        elif self.kind == "header":
            headers[self.header or "X-Api-Key"] = self.secret
        return headers


class RestSubscriberClient:
    def __init__(self, *, listing: RestListing, auth: RestAuth, http: RetryingHttp | None = None) -> None:
        self.listing = listing
        self.auth = auth
        self.http = http or RetryingHttp(label="REST source")
        self.pages = 0

    def _page(self, url: str, params: dict[str, Any] | None = None) -> tuple[Any, list[Any]]:
        response = self.http.request("GET", url, headers=self.auth.headers(), params=params)
        data = self.http.json(response)
        self.pages += 1
        items = json_path_get(data, self.listing.items_path)
        if not isinstance(items, list):
            where = f"'{self.listing.items_path}'" if self.listing.items_path else "the top of the answer"
            raise SourceClientError(f"{self.http.label}: GET {url}: no list at {where}", permanent=True)
        return data, items

    def items(self) -> Iterator[Any]:
        """Every item of every page, as sent."""
        listing = self.listing
        if listing.paging == "next_link":
            yield from self._next_link_items()
            return
        if listing.paging == "none":
            yield from self._page(listing.url)[1]
            return
        fetched = 0
        for number in range(MAX_PAGES):
            params: dict[str, Any] = {listing.limit_param: listing.page_size}
            if listing.paging == "offset":
                params[listing.offset_param] = fetched
            else:
                params[listing.page_param] = number + 1
            data, items = self._page(listing.url, params)
            yield from items
            fetched += len(items)
            total = json_path_get(data, listing.total_path) if listing.total_path else None
            if isinstance(total, int) and not isinstance(total, bool):
                if fetched >= total:
                    return
                if not items:
                    raise SourceClientError(
                        f"{self.http.label}: {total} in all but an empty page after {fetched}"
                    )
            elif len(items) < listing.page_size:
                return
        raise SourceClientError(f"{self.http.label}: did not finish after {MAX_PAGES} pages")

    def _next_link_items(self) -> Iterator[Any]:
        origin = urlsplit(self.listing.url)[:2]
        url: str | None = self.listing.url
        seen: set[str] = set()
        while url is not None:
            if len(seen) >= MAX_PAGES:
                raise SourceClientError(f"{self.http.label}: did not finish after {MAX_PAGES} pages")
            seen.add(url)
            data, items = self._page(url)
            yield from items
            link = json_path_get(data, self.listing.next_path)
            if not isinstance(link, str) or not link:
                return
            url = urljoin(url, link)
            if urlsplit(url)[:2] != origin:
                raise SourceClientError(
                    f"{self.http.label}: the next page is on another host ({urlsplit(url).netloc}); "
                    "not followed, so that the credential stays with the configured host",
                    permanent=True,
                )
            if url in seen:
                raise SourceClientError(f"{self.http.label}: the next link repeats a page ({url})")
