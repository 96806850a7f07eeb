"""``POST /webhooks/wix/``: the body is a JWT; verify it, store it, answer fast."""

from __future__ import annotations

from rest_framework import status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sync.services.webhooks import MAX_BODY_BYTES, webhook_receive


class RawBodyParser(BaseParser):
    """Wix sends ``text/plain`` (or nothing): the view reads ``request.body`` itself."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        return {}


class WixWebhookView(APIView):
    # Wix signs the body; there is no session, token or CSRF to check.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [RawBodyParser]

    def post(self, request: Request) -> Response:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            return Response({"detail": "body over 1 MB"}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        body = request.body  # verified before anything parses it
        if len(body) > MAX_BODY_BYTES:
            return Response({"detail": "body over 1 MB"}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        result = webhook_receive(body=body)
        if result.status_code == 401:
            return Response({"detail": "invalid webhook"}, status=status.HTTP_401_UNAUTHORIZED)
        if result.status_code == 400:
            return Response(
                {"detail": f"malformed webhook: {result.detail}"}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response({"duplicate": result.duplicate}, status=status.HTTP_200_OK)
