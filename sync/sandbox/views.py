"""The fake Wix REST API, served under /sandbox/wix/ only when PORTAL_SANDBOX is on."""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sync.sandbox.services import (
    ENTITY_KEY,
    SANDBOX_SITE_ID,
    SandboxError,
    entity_create,
    entity_delete,
    entity_get,
    entity_query,
    entity_update,
    fault_take,
    order_place,
)

TOKEN_SALT = "sandbox-oauth-token"  # noqa: S105 - a signing salt, not a secret
TOKEN_LIFETIME = 14400  # Wix: client-credentials tokens live 4 hours


def _error(exc: SandboxError) -> JsonResponse:
    return JsonResponse(exc.body(), status=exc.status)


def _authorized(request: HttpRequest) -> bool:
    given = request.headers.get("Authorization", "")
    if given.startswith("Bearer "):
        given = given[len("Bearer ") :]
    if secrets.compare_digest(given, settings.WIX_SANDBOX_API_KEY):
        return request.headers.get("wix-site-id") == SANDBOX_SITE_ID
    try:
        signing.TimestampSigner(salt=TOKEN_SALT).unsign(given, max_age=TOKEN_LIFETIME)
    except signing.BadSignature:
        return False
    return True


def wix_endpoint(view: Callable[..., dict[str, Any]]) -> Callable[..., JsonResponse]:
    """Sandbox gate, injected faults, auth, JSON in and out, Wix's error format."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        if not settings.PORTAL_SANDBOX:
            raise Http404("The sandbox is off.")
        fault = fault_take(request.path)
        if fault is not None:
            error = SandboxError(
                fault.status, fault.code or "INJECTED", fault.message or "Injected fault"
            ).body()
            response = JsonResponse(
                error if fault.status < 500 else {"message": fault.message, "details": {}},
                status=fault.status,
            )
            if fault.retry_after is not None:
                response["Retry-After"] = str(fault.retry_after)
            return response
        if view.__name__ != "oauth_token" and not _authorized(request):
            return _error(
                SandboxError(401, "UNAUTHENTICATED", "Missing or invalid Authorization / wix-site-id")
            )
        body: dict[str, Any] = {}
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                return _error(SandboxError(400, "INVALID_ARGUMENT", "Body is not JSON"))
            if not isinstance(body, dict):
                return _error(SandboxError(400, "INVALID_ARGUMENT", "Body is not a JSON object"))
        try:
            return JsonResponse(view(request, body, *args, **kwargs))
        except SandboxError as exc:
            return _error(exc)
        except (TypeError, ValueError, KeyError) as exc:
            return _error(SandboxError(400, "INVALID_ARGUMENT", f"Bad request: {exc}"))

    return wrapper


@wix_endpoint
def oauth_token(request: HttpRequest, body: dict[str, Any]) -> dict[str, Any]:
    if (
        body.get("grant_type") != "client_credentials"
        or not body.get("client_id")
        or not body.get("instance_id")
    ):
        raise SandboxError(
            400, "INVALID_ARGUMENT", "client_credentials grant needs client_id and instance_id"
        )
    token = signing.TimestampSigner(salt=TOKEN_SALT).sign(secrets.token_hex(8))
    return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME}


def collection(kind: str) -> Callable[..., JsonResponse]:
    @wix_endpoint
    def view(request: HttpRequest, body: dict[str, Any]) -> dict[str, Any]:
        if request.method != "POST":
            raise SandboxError(405, "METHOD_NOT_ALLOWED", "Use POST")
        key = ENTITY_KEY[kind]
        if not isinstance(body.get(key), dict):
            raise SandboxError(400, "INVALID_ARGUMENT", f"{key} is required", field=key)
        return entity_create(kind=kind, data=body[key])

    view.__name__ = f"{kind}_collection"
    return view


def query(kind: str) -> Callable[..., JsonResponse]:
    @wix_endpoint
    def view(request: HttpRequest, body: dict[str, Any]) -> dict[str, Any]:
        return entity_query(kind=kind, body=body)

    view.__name__ = f"{kind}_query"
    return view


def item(kind: str) -> Callable[..., JsonResponse]:
    @wix_endpoint
    def view(request: HttpRequest, body: dict[str, Any], wix_id: str) -> dict[str, Any]:
        key = ENTITY_KEY[kind]
        if request.method == "GET":
            return entity_get(kind=kind, wix_id=wix_id, fields=request.GET.getlist("fields"))
        if request.method == "PATCH":
            return entity_update(kind=kind, wix_id=wix_id, changes=body.get(key) or {})
        if request.method == "DELETE":
            entity_delete(kind=kind, wix_id=wix_id)
            return {}
        raise SandboxError(405, "METHOD_NOT_ALLOWED", "Use GET, PATCH or DELETE")

    view.__name__ = f"{kind}_item"
    return view


@wix_endpoint
def orders(request: HttpRequest, body: dict[str, Any]) -> dict[str, Any]:
    """Sandbox-only: sell tickets ``{"eventId", "tickets": {"<tdId>": qty}}`` (fires Order Confirmed)."""
    return order_place(event_id=str(body.get("eventId")), quantities=body.get("tickets") or {})
