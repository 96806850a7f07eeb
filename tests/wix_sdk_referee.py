"""Wix's own JavaScript SDK, pinned in tests/wix_sdk/, run with the machine's Node.js.

The packages are installed with ``npm ci`` from the committed lock file, once per lock file:
the hash of package.json and package-lock.json is kept in node_modules, so a later run whose
files match installs nothing, and a changed lock file installs afresh. Without Node.js or npm
(or when the install fails) the contract tests are skipped, unless REQUIRE_WIX_SDK=1 (CI),
which fails them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SDK_DIR = Path(__file__).resolve().parent / "wix_sdk"
SCRIPT = SDK_DIR / "referee.mjs"
STAMP = SDK_DIR / "node_modules" / ".portal-install-sha256"
MIN_NODE = 18  # the SDK calls the global fetch (Node.js 18+)
INSTALL_TIMEOUT = 600
RUN_TIMEOUT = 180


def _unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_WIX_SDK") == "1":
        pytest.fail(f"REQUIRE_WIX_SDK=1 but the Wix SDK contract tests cannot run: {reason}")
    pytest.skip(f"Wix SDK contract tests skipped: {reason} (set REQUIRE_WIX_SDK=1 to make this fail)")


def _lock_hash() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((SDK_DIR / name).read_bytes())
    return digest.hexdigest()


def pinned_versions() -> dict[str, str]:
    """The exact versions package.json asks for."""
    return dict(json.loads((SDK_DIR / "package.json").read_text())["dependencies"])


def installed_versions() -> dict[str, str]:
    return {
        name: json.loads((SDK_DIR / "node_modules" / name / "package.json").read_text())["version"]
        for name in pinned_versions()
    }


def _install(npm: str) -> None:
    wanted = _lock_hash()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=SDK_DIR,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"npm ci in {SDK_DIR} took more than {INSTALL_TIMEOUT} s")
    if result.returncode != 0:
        _unavailable(f"npm ci in {SDK_DIR} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    STAMP.write_text(wanted + "\n")


@dataclass(frozen=True)
class Referee:
    node: str
    node_version: str
    versions: dict[str, str]

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run referee.mjs with one JSON request; its JSON answer, or the test fails with its error."""
        result = subprocess.run(
            [self.node, str(SCRIPT)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
            cwd=SDK_DIR,
        )
        if result.returncode != 0:
            pytest.fail(f"referee.mjs ({request.get('mode')}) failed ({result.returncode}):\n{result.stderr}")
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer


@pytest.fixture(scope="session")
def wix_sdk() -> Referee:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable(
            f"{'node' if not node else 'npm'} is not installed (Node.js {MIN_NODE}+ with npm is needed)"
        )
    assert node and npm
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if not match or int(match.group(1)) < MIN_NODE:
        _unavailable(f"Node.js {MIN_NODE}+ is needed, found {version or 'no version'}")
    _install(npm)
    versions = installed_versions()
    # The lock file and package.json must agree: a pin that npm did not honour is a broken lock.
    assert versions == pinned_versions(), f"installed {versions}, pinned {pinned_versions()}"
    return Referee(node=node, node_version=version, versions=versions)
