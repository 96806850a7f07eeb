"""Child processes for the benchmarks, each in its own process group.

django-q2's qcluster forks a sentinel and workers; a SIGTERM to the parent alone can leave
them running (orphaned, still polling the queue) and skew the next run, so what is left of
the group after the parent's own shutdown is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def spawn(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, start_new_session=True, **options)


def stop(processes: Iterable[subprocess.Popen[bytes]], grace: float = 20) -> None:
    """SIGTERM each process (its own shutdown stops its children), then SIGKILL whatever is
    left of its group: a qcluster whose children all get SIGTERM at once hangs until killed."""
    processes = list(processes)
    for process in processes:
        process.terminate()
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
        _signal_group(process, signal.SIGKILL)  # the group's other members, if any are left
        process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


ROOT = Path(__file__).resolve().parent.parent


def portal_setup(*, port: int, cluster_name: str, prefix: str, **extra: str) -> dict[str, str]:
    """A fresh portal (sandbox on, SQLite in a new temporary directory unless DATABASE_URL is
    set) served on ``port``: migrates it, sets Django up in this process, and returns the
    environment its servers and workers run with."""
    env = {
        **os.environ,
        "PORTAL_DEBUG": "1",
        "PORTAL_SANDBOX": "1",
        # One key for every process: django-q2 signs tasks with it.
        "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "PORTAL_DATA_DIR": tempfile.mkdtemp(prefix=prefix),
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "Q_CLUSTER_NAME": cluster_name,
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return env


def gunicorn(env: dict[str, str], port: int, *options: str) -> subprocess.Popen[bytes]:
    binary = str(Path(sys.executable).parent / "gunicorn")
    return spawn([binary, "portal.wsgi", "-b", f"127.0.0.1:{port}", *options], env=env, cwd=ROOT)


def qcluster(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Workers as in production: debug off (the sandbox, which needs debug, is served by the
    web server; with debug on, Django would also record every query the workers make)."""
    return spawn(
        [sys.executable, "manage.py", "qcluster"],
        env={**env, "PORTAL_DEBUG": "0", "PORTAL_SANDBOX": "0"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
