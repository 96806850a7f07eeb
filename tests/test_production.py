"""The production profile comes from the environment (issue 10, point 5)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from tests.test_settings import ROOT, _start

# The variables README's "Running in production" documents, with example values.
PRODUCTION = {
    "PORTAL_DEBUG": "0",
    "PORTAL_SANDBOX": "0",
    "SECRET_KEY": "k3y-" + "x7Qp2" * 12,
    "ALLOWED_HOSTS": "portal.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://portal.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto,https",
    "TRUSTED_PROXY_COUNT": "1",
}
CHECK = "from django.core.management import execute_from_command_line as run; run({argv})"


def test_check_deploy_is_clean_with_the_documented_production_variables() -> None:
    argv = ["manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    result = _start(PRODUCTION, CHECK.format(argv=argv))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_readme_documents_every_production_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running in production", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in PRODUCTION if f"`{name}`" not in section]
    assert not missing


def test_cookies_are_secure_whenever_debug_is_off() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
        " s.SECURE_PROXY_SSL_HEADER, s.SECURE_HSTS_SECONDS)"
    )
    off = _start({**PRODUCTION, "SECURE_PROXY_SSL_HEADER": "", "SECURE_HSTS_SECONDS": ""}, code)
    assert off.stdout.split() == ["True", "True", "None", "0"], off.stderr
    on = _start({**PRODUCTION, "PORTAL_DEBUG": "1"}, code).stdout
    assert on.split()[:2] == ["False", "False"]
    assert "('HTTP_X_FORWARDED_PROTO', 'https') 31536000" in on


@pytest.mark.parametrize("value", ["X-Forwarded-Proto", ",https"])
def test_a_malformed_proxy_header_setting_stops_the_start(value: str) -> None:
    result = _start({**PRODUCTION, "SECURE_PROXY_SSL_HEADER": value})
    assert result.returncode != 0 and "SECURE_PROXY_SSL_HEADER" in result.stderr


def test_the_sandbox_refuses_to_start_with_debug_off() -> None:
    result = _start({**PRODUCTION, "PORTAL_SANDBOX": "1"})
    assert result.returncode != 0 and "PORTAL_SANDBOX=1 needs PORTAL_DEBUG=1" in result.stderr
    assert _start({**PRODUCTION, "PORTAL_SANDBOX": "1", "PORTAL_DEBUG": "1"}).stdout.strip() == "started"


def _login_behind_tls_proxy(client: Client) -> int:
    """A browser at https://portal.example.com; the proxy speaks plain HTTP to the portal."""
    proxy = {"HTTP_HOST": "portal.example.com", "HTTP_X_FORWARDED_PROTO": "https"}
    page = client.get("/admin/login/", **proxy).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]  # type: ignore[index]
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "boss", "password": "pw-boss-123", "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="https://portal.example.com",
        HTTP_REFERER="https://portal.example.com/admin/login/",
        **proxy,
    )
    return response.status_code


@pytest.mark.django_db
@override_settings(ALLOWED_HOSTS=["portal.example.com"], SECURE_SSL_REDIRECT=True)
def test_the_admin_login_works_behind_a_tls_terminating_proxy(admin_user: User) -> None:
    with override_settings(SECURE_PROXY_SSL_HEADER=None):
        # Without the header setting Django thinks the request is plain HTTP: a redirect loop.
        assert (
            Client(enforce_csrf_checks=True).get("/admin/login/", HTTP_HOST="portal.example.com").status_code
            == 301
        )
    with override_settings(SECURE_PROXY_SSL_HEADER=None, SECURE_SSL_REDIRECT=False):
        assert _login_behind_tls_proxy(Client(enforce_csrf_checks=True)) == 403  # the CSRF origin check
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        assert _login_behind_tls_proxy(Client(enforce_csrf_checks=True)) == 302
