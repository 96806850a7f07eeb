"""Child processes for the benchmarks, each in its own process group.

django-q2's qcluster forks a sentinel and workers; a SIGTERM to the parent alone can leave
them running (orphaned, still polling the queue) and skew the next run. Stopping the group
stops them all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable
from typing import Any


def spawn(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, start_new_session=True, **options)


def stop(processes: Iterable[subprocess.Popen[bytes]], grace: float = 20) -> None:
    """SIGTERM each group, then SIGKILL what is still there after ``grace`` seconds."""
    processes = list(processes)
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
        _signal_group(process, signal.SIGKILL)  # the group's other members, if any are left
        process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
