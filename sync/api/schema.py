"""The error answers every endpoint documents, so the schema says what a client can get."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

from sync.api.serializers import DetailSerializer

VALIDATION = OpenApiResponse(
    OpenApiTypes.OBJECT, description="Invalid input: each field's messages, by field name."
)
UNAUTHENTICATED = OpenApiResponse(DetailSerializer, description="No token or session, or a bad token.")
FORBIDDEN = OpenApiResponse(DetailSerializer, description="The user's role lacks the permission.")
NOT_FOUND = OpenApiResponse(DetailSerializer, description="No such row.")
UNSUPPORTED = OpenApiResponse(DetailSerializer, description="The body is not JSON (`Content-Type`).")


def answers(
    ok: dict[int, Any], *, invalid: bool = True, missing: bool = False, body: bool = False
) -> dict[int, Any]:
    """``ok`` plus 400 (when the input can be invalid), 401, 403, 404 (``missing``) and, for a
    request with a body, 415."""
    errors: dict[int, Any] = {401: UNAUTHENTICATED, 403: FORBIDDEN}
    if invalid:
        errors[400] = VALIDATION
    if missing:
        errors[404] = NOT_FOUND
    if body:
        errors[415] = UNSUPPORTED
    return {**ok, **errors}
