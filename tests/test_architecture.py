"""The layers of docs/architecture.md hold: import-linter checks the contracts in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_imports_follow_the_layers() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and "0 broken" in result.stdout


def test_the_linter_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The check is real: a contract the code breaks (models use the pure vocabulary) fails."""
    config = tmp_path / "broken.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["portal", "sync"]\n\n'
        '[[tool.importlinter.contracts]]\nname = "models without the domain"\ntype = "forbidden"\n'
        'source_modules = ["sync.models"]\nforbidden_modules = ["sync.domain"]\n'
    )
    result = _lint("--config", str(config))
    assert result.returncode != 0 and "sync.models.external -> sync.domain" in result.stdout
