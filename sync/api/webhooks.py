"""``POST /webhooks/wix/``: the body is a JWT; verify it, store it, answer fast.

An address whose bodies keep being refused (401, 413) is answered 429 for the rest of the
window without its body being read; the counting lives in the cache (no database write).
"""

from __future__ import annotations

import time

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.client import client_address
from portal.metrics import WEBHOOK_ACK_SECONDS
from sync.services.webhook_limits import address_blocked, address_refused
from sync.services.webhooks import MAX_BODY_BYTES, webhook_receive


class RawBodyParser(BaseParser):
    """Wix sends ``text/plain`` (or nothing): the view reads ``request.body`` itself."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        return {}


# Wix's endpoint, not the tools' API: the body is a JWT only Wix can sign.
@extend_schema(exclude=True)
class WixWebhookView(APIView):
    # Wix signs the body; there is no session, token or CSRF to check.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [RawBodyParser]

    def post(self, request: Request) -> Response:
        started = time.perf_counter()
        response = self._answer(request)
        WEBHOOK_ACK_SECONDS.labels(str(response.status_code)).observe(time.perf_counter() - started)
        return response

    def _answer(self, request: Request) -> Response:
        address = client_address(request) or "unknown"
        if address_blocked(address):
            return Response(
                {"detail": "too many invalid webhooks from this address; try later"},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            address_refused(address)
            return Response({"detail": "body over 1 MB"}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        body = request.body  # verified before anything parses it
        if len(body) > MAX_BODY_BYTES:
            address_refused(address)
            return Response({"detail": "body over 1 MB"}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        result = webhook_receive(body=body)
        if result.status_code == 401:
            address_refused(address)
            return Response({"detail": "invalid webhook"}, status=status.HTTP_401_UNAUTHORIZED)
        if result.status_code == 400:
            return Response(
                {"detail": f"malformed webhook: {result.detail}"}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response({"duplicate": result.duplicate}, status=status.HTTP_200_OK)
