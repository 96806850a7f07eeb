"""A real pretix on loopback for the end-to-end tests, from ../shared/pretix (setup, start, stop).

The first setup installs and migrates pretix (about 4 minutes); later ones take seconds.
Without ../shared/pretix the tests are skipped, unless REQUIRE_PRETIX=1 (CI), which fails them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

SCRIPTS = Path(__file__).resolve().parents[1].parent / "shared" / "pretix"
PORT = os.environ.get("PRETIX_PORT", "8345")
_PORTAL_ENV = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PYTHONPATH"}
HOME = Path(os.environ.get("PRETIX_HOME", Path.home() / ".local/share/pretix-local"))


@dataclass(frozen=True)
class Pretix:
    url: str
    organizer: str
    token: str

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1/organizers/{self.organizer}"

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {self.token}"
        return session

    def get(self, path: str) -> dict:
        response = self.session().get(f"{self.api}/{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def results(self, path: str) -> list[dict]:
        return self.get(path)["results"]

    def clear(self) -> None:
        """Delete every event of the organizer: each test starts from an empty pretix."""
        session = self.session()
        for event in self.results("events/?page_size=200"):
            response = session.delete(f"{self.api}/events/{event['slug']}/", timeout=30)
            assert response.status_code in (204, 404), response.text


def _run(script: str, timeout: int) -> str:
    # pretix is a Django project too: it must not see the portal's settings or database.
    env = {k: v for k, v in os.environ.items() if k not in _PORTAL_ENV and not k.startswith("PORTAL_")}
    result = subprocess.run(
        ["bash", str(SCRIPTS / script)], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if result.returncode != 0:
        pytest.fail(
            f"{script} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


@pytest.fixture(scope="session")
def pretix_server() -> Iterator[Pretix]:
    if not (SCRIPTS / "setup.sh").exists():
        if os.environ.get("REQUIRE_PRETIX") == "1":
            pytest.fail(f"REQUIRE_PRETIX=1 but {SCRIPTS} has no setup.sh")
        pytest.skip(f"{SCRIPTS} is not here")
    _run("setup.sh", timeout=1200)
    started = "already running" not in _run("start.sh", timeout=180)
    try:
        yield Pretix(f"http://127.0.0.1:{PORT}", "demo", (HOME / "token").read_text().strip())
    finally:
        if started:
            _run("stop.sh", timeout=60)


@pytest.fixture
def pretix(pretix_server: Pretix) -> Pretix:
    pretix_server.clear()
    return pretix_server
