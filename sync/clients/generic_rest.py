"""Generic REST ticketing system: staff describe the endpoints; this client calls them.

Auth is a bearer token, basic auth or a custom header; the secret is read from the
environment at call time and never logged (only method, URL and body are recorded).
HTTP only: the adapter in ``sync.services.adapters.generic_rest`` builds it from the
system's rows.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from portal.secrets import secret_read
from sync.clients.base import ExternalError, RecordedHttp
from sync.domain.endpoints import EXTERNAL_ID, endpoint_path_check


@dataclass(frozen=True)
class Endpoint:
    """Where one entity type is created, updated and deleted (paths relative to the base URL)."""

    create_method: str
    create_path: str
    update_method: str
    update_path: str
    delete_method: str
    delete_path: str
    id_path: str = "id"


@dataclass(frozen=True)
class RestAuth:
    """``kind``: none, bearer, basic or header; the secret is named, read only when sending."""

    kind: str = "none"
    secret_env: str = ""
    username: str = ""
    header: str = ""


def _dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return data


class GenericRestClient:
    def __init__(self, *, name: str, base_url: str, auth: RestAuth, endpoints: dict[str, Endpoint]) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.endpoints = endpoints

    def _endpoint(self, entity_type: str) -> Endpoint:
        try:
            return self.endpoints[entity_type]
        except KeyError:
            raise ExternalError(f"{self.name} has no endpoints for {entity_type}", permanent=True) from None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.auth.kind == "none":
            return headers
        secret = secret_read(self.auth.secret_env, prefix="EXTERNAL_")
        if self.auth.kind == "bearer":
            headers["Authorization"] = f"Bearer {secret}"
        elif self.auth.kind == "basic":
            token = base64.b64encode(f"{self.auth.username}:{secret}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        else:
            headers[self.auth.header or "X-Api-Key"] = secret
        return headers

    def _url(self, template: str, external_id: str | None = None) -> str:
        """Base URL + path, with ``{external_id}`` URL-quoted (an id cannot add a path or a query).

        Checked again here, not only on save: a row saved before the check must not reach
        ``str.format``-style substitution or another host."""
        problem = endpoint_path_check(template, takes_id=external_id is not None)
        if problem:
            raise ExternalError(f"{self.name}: endpoint path {template!r}: {problem}", permanent=True)
        path = (
            template.replace(EXTERNAL_ID, quote(external_id, safe=""))
            if external_id is not None
            else template
        )
        return self.base_url + "/" + path.lstrip("/")

    def create(
        self, http: RecordedHttp, *, entity_type: str, payload: dict[str, Any], idempotency_key: str
    ) -> str:
        endpoint = self._endpoint(entity_type)
        # A target that honours Idempotency-Key never creates twice, even when a worker dies
        # after the create and before the link is stored.
        headers = {**self._headers(), "Idempotency-Key": idempotency_key}
        response = http.request(
            "create",
            endpoint.create_method,
            self._url(endpoint.create_path),
            json_body=payload,
            headers=headers,
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        external_id = _dig(body, endpoint.id_path)
        if isinstance(external_id, int | str) and not isinstance(external_id, bool) and str(external_id):
            return str(external_id)
        raise ExternalError(
            f"Create answered {response.status_code} without an id at '{endpoint.id_path}'; "
            "no link was written",
            permanent=True,
            http_status=response.status_code,
        )

    def update(
        self, http: RecordedHttp, *, entity_type: str, external_id: str, payload: dict[str, Any]
    ) -> None:
        endpoint = self._endpoint(entity_type)
        url = self._url(endpoint.update_path, external_id)
        http.request("update", endpoint.update_method, url, json_body=payload, headers=self._headers())

    def delete(self, http: RecordedHttp, *, entity_type: str, external_id: str) -> None:
        endpoint = self._endpoint(entity_type)
        url = self._url(endpoint.delete_path, external_id)
        response = http.request(
            "delete", endpoint.delete_method, url, headers=self._headers(), allow=(404, 410)
        )
        if response.status_code in (404, 410):
            http.note("Already gone: nothing to delete.")
