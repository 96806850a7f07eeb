"""The API against its own OpenAPI schema: schemathesis generates requests from the schema
(valid and invalid bodies, query and path parameters) and sends them through the WSGI app with
a superuser's token. No answer may be a 500, and each must be one the schema documents (status,
content type, body). Bounded: 50 examples per operation, about half a minute in all
(``SCHEMATHESIS_EXAMPLES=1000`` for a deeper, random run)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from knox.models import AuthToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sync.models import BackfillRun, ExternalSystem, OutboundWork, WebhookDelivery, WixSite
from sync.services.mirrors import event_upsert_from_wix, policy_upsert_from_wix
from tests.conftest import wix_payload

EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _document() -> dict:
    """The document /api/schema/ serves (built at collection: schemathesis makes one test per
    operation from it)."""
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


schema = schemathesis.openapi.from_dict(_document())
schema.app = get_wsgi_application()


@pytest.fixture
def api_token(admin_user: User, site: WixSite) -> Iterator[str]:
    """A superuser's token, a row in every list (and entities to resync), and the database
    connection kept open between requests (as Django's own test client does: each request ends
    by closing old connections, which would close the test's)."""
    event = wix_payload("event__query")["events"][0]
    event_upsert_from_wix(site=site, data=event)
    policy_upsert_from_wix(site=site, data={**wix_payload("policy__get")["policy"], "eventId": event["id"]})
    system = ExternalSystem.objects.create(name="Tickets", base_url="https://tickets.test", auth_type="none")
    OutboundWork.objects.create(
        system=system, site=site, entity_type="policy", wix_id="p", trigger="webhook", status="dead"
    )
    WebhookDelivery.objects.create(site=site, wix_event_id="e", raw_body="a.b.c", status="failed")
    BackfillRun.objects.create(site=site, trigger="admin", status="failed", errors=[{"error": "x"}])
    signals = (request_started, request_finished)
    for signal in signals:
        signal.disconnect(close_old_connections)
    yield AuthToken.objects.create(user=admin_user)[1]
    for signal in signals:
        signal.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=int(EXAMPLES or 50),
    deadline=None,
    # CI sees the same requests every run; a deeper, random run: SCHEMATHESIS_EXAMPLES=1000.
    derandomize=not EXAMPLES,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_request_answers_500_or_off_the_schema(case: schemathesis.Case, api_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {api_token}"}, checks=CHECKS)


def test_the_schema_served_is_the_one_tested_and_documents_every_endpoint(admin_client: Client) -> None:
    response = admin_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    served = response.json()
    assert served == _document()
    assert set(served["paths"]) == {
        "/api/backfills/",
        "/api/backfills/{id}/",
        "/api/resyncs/",
        "/api/dry-runs/",
        "/api/dead-letters/",
        "/api/dead-letters/retry/",
        "/api/failed-deliveries/",
        "/api/failed-deliveries/replay/",
        "/api/failed-backfills/",
        "/api/campaigns/",
        "/api/campaigns/{id}/",
        "/api/campaigns/{id}/send_now/",
        "/api/campaigns/{id}/cancel/",
    }
    assert served["components"]["securitySchemes"]["knoxApiToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }
    # Every operation documents the errors a client can get besides its success.
    for path, operations in served["paths"].items():
        for method, operation in operations.items():
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_the_schema_builds_without_a_warning_and_validates(tmp_path: Path) -> None:
    """A view drf-spectacular cannot describe (no serializer, an unannotated field) warns;
    ``--fail-on-warn`` turns that into a failure, so every new view comes annotated."""
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "/api/dead-letters/retry/" in out.read_text()
