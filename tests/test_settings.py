from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_list, env_str
from portal.qconfig import q_cluster_validate
from portal.secrets import MissingSecret, secret_read

ROOT = Path(__file__).resolve().parent.parent


def test_env_bool_accepts_the_usual_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, expected in [
        ("1", True),
        ("yes", True),
        ("ON", True),
        ("0", False),
        ("off", False),
        ("", False),
    ]:
        monkeypatch.setenv("X_FLAG", raw)
        assert env_bool("X_FLAG", not expected) is expected
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True


def test_env_bool_rejects_a_typo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='ture' is not a boolean"):
        env_bool("X_FLAG")


def test_env_int_and_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_INT", "12")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_int("X_INT", 1) == 12
    assert env_list("X_LIST") == ["a", "b", "c"]
    monkeypatch.setenv("X_INT", "twelve")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("X_INT", 1)


def test_secrets_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("s3cret\n")
    monkeypatch.delenv("WIX_FILE_KEY", raising=False)
    monkeypatch.setenv("WIX_FILE_KEY_FILE", str(tmp_path / "key"))
    assert env_str("WIX_FILE_KEY") == "s3cret"
    assert secret_read("WIX_FILE_KEY", prefix="WIX_") == "s3cret"


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("SECRET_KEY", "WIX_"),
        ("DATABASE_URL", "EXTERNAL_"),
        ("WIX_API_KEY", "EXTERNAL_"),  # a ticketing system naming the Wix key
        ("EXTERNAL_TOKEN", "WIX_"),
        ("MARKETING_KEY", "EXTERNAL_"),
        ("EXTERNAL_", "EXTERNAL_"),
        ("external_token", "EXTERNAL_"),
    ],
)
def test_a_secret_is_only_read_under_its_own_kind_of_prefix(
    monkeypatch: pytest.MonkeyPatch, name: str, prefix: str
) -> None:
    monkeypatch.setenv(name, "the-secret-value")
    with pytest.raises(MissingSecret, match=f"use a variable starting with {prefix}"):
        secret_read(name, prefix=prefix)
    monkeypatch.delenv("WIX_NOT_SET", raising=False)
    with pytest.raises(MissingSecret, match="WIX_NOT_SET"):
        secret_read("WIX_NOT_SET", prefix="WIX_")


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"timeout": 60, "retry": 60, "max_attempts": 3}, "must be greater than 'timeout'"),
        ({"timeout": 90, "retry": 60, "max_attempts": 3}, "must be greater than 'timeout'"),
        ({"timeout": None, "retry": 60, "max_attempts": 3}, "set a positive number of seconds"),
        ({"timeout": 30, "retry": 60, "max_attempts": 0}, "0 means unlimited"),
        ({"timeout": 30, "retry": 60}, "0 means unlimited"),
    ],
)
def test_q_cluster_guard_refuses_unsafe_configurations(conf: dict, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        q_cluster_validate(conf)


def test_q_cluster_guard_accepts_a_safe_configuration() -> None:
    q_cluster_validate({"timeout": 30, "retry": 60, "max_attempts": 3})


def _start(
    env: dict[str, str], code: str = "import django; django.setup(); print('started')"
) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "Q_", "SECRET_KEY", "DATABASE_URL"))
    }
    base |= {"DJANGO_SETTINGS_MODULE": "portal.settings", "PORTAL_DATA_DIR": tempfile.mkdtemp()}
    return subprocess.run(
        [sys.executable, "-c", code], env=base | env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_start_up_refuses_retry_not_greater_than_timeout() -> None:
    result = _start({"PORTAL_DEBUG": "1", "Q_TIMEOUT": "400", "Q_RETRY": "300"})
    assert result.returncode != 0
    assert "must be greater than 'timeout'" in result.stderr


def test_start_up_refuses_unlimited_attempts() -> None:
    result = _start({"PORTAL_DEBUG": "1", "Q_MAX_ATTEMPTS": "0"})
    assert result.returncode != 0
    assert "0 means unlimited" in result.stderr


def test_secret_key_is_required_outside_debug() -> None:
    result = _start({"PORTAL_DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr
    assert _start({"PORTAL_DEBUG": "0", "SECRET_KEY": "x" * 50}).stdout.strip() == "started"


def test_default_database_is_sqlite_in_wal_mode() -> None:
    code = (
        "import django; django.setup(); from django.db import connection;"
        "c = connection.cursor(); c.execute('PRAGMA journal_mode'); print(connection.vendor, c.fetchone()[0])"
    )
    assert _start({"PORTAL_DEBUG": "1"}, code).stdout.strip() == "sqlite wal"


def test_database_url_and_redis_url_switch_backends() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings;"
        "q = settings.Q_CLUSTER;"
        "print(settings.DATABASES['default']['ENGINE'], q.get('redis'), 'orm' in q)"
    )
    result = _start(
        {
            "PORTAL_DEBUG": "1",
            "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
            "REDIS_URL": "redis://127.0.0.1:6379/3",
        },
        code,
    )
    assert result.stdout.split() == ["django.db.backends.postgresql", "redis://127.0.0.1:6379/3", "False"]


def test_sandbox_is_not_served_unless_enabled() -> None:
    code = (
        "import django; django.setup(); from django.test import Client;"
        "print(Client().post('/sandbox/wix/events/v3/events/query').status_code)"
    )
    assert _start({"PORTAL_DEBUG": "1", "PORTAL_SANDBOX": "0"}, code).stdout.strip() == "404"


def test_env_example_lists_every_variable_the_settings_read() -> None:
    import re

    names = set(
        re.findall(
            r'env_(?:str|bool|int|float|list)\("([A-Z0-9_]+)"', (ROOT / "portal/settings.py").read_text()
        )
    )
    example = (ROOT / ".env.example").read_text()
    missing = sorted(n for n in names if not re.search(rf"^#?\s*{n}=", example, re.M))
    assert names and not missing
