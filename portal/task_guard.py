"""Which functions the django-q2 worker may be told to run from the admin.

A schedule or a re-queued task names a function by its dotted path, and the worker imports
and calls whatever it is told: ``subprocess.getoutput`` with ``"id"`` runs a shell command
as the worker's user. So a path is accepted only if it is one of the portal's own tasks: a
function whose name ends in ``_task``, defined (not merely imported) in one of the modules
``settings.PORTAL_TASK_MODULES`` lists. The same goes for a hook (called with the finished
task), and a schedule's keyword arguments may not smuggle in django-q2's own options
(``hook``, ``chain``, ``q_options``, …), which name more functions to call.
"""

from __future__ import annotations

import ast
import importlib
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

# django-q2's async_task takes these from the keyword arguments (django_q/tasks.py).
Q_OPTION_KEYS = frozenset(
    {
        "q_options",
        "hook",
        "group",
        "save",
        "sync",
        "cached",
        "ack_failure",
        "iter_count",
        "iter_cached",
        "chain",
        "broker",
        "timeout",
        "cluster",
    }
)


def task_allowed(path: str) -> bool:
    """True if ``path`` is ``<allowed module>.<name>_task`` and defined in that module."""
    module_name, _, name = (path or "").strip().rpartition(".")
    if module_name not in settings.PORTAL_TASK_MODULES or not name.endswith("_task"):
        return False
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    func = getattr(module, name, None)
    return callable(func) and getattr(func, "__module__", None) == module_name


def task_choices() -> list[str]:
    """Every allowed task path, for help texts and error messages."""
    paths = []
    for module_name in settings.PORTAL_TASK_MODULES:
        module = importlib.import_module(module_name)
        paths += [
            f"{module_name}.{name}" for name in sorted(vars(module)) if task_allowed(f"{module_name}.{name}")
        ]
    return paths


def schedule_kwargs_parse(text: str) -> dict[str, Any]:
    """Read a schedule's kwargs the way django-q2's scheduler does (a dict literal or ``a=1, b=2``)."""
    if not text.strip():
        return {}
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        try:
            call = ast.parse(f"f({text})").body[0].value  # type: ignore[attr-defined]
            return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except (SyntaxError, ValueError, AttributeError) as exc:
            raise ValidationError({"kwargs": "Write a dict literal or name=value pairs."}) from exc
    if not isinstance(value, dict):
        raise ValidationError({"kwargs": "Write a dict literal or name=value pairs."})
    return value


def schedule_validate(*, func: str, hook: str, kwargs: str) -> None:
    """Raise ValidationError unless the schedule can only run the portal's own tasks."""
    errors: dict[str, Any] = {}
    allowed = ", ".join(task_choices())
    if not task_allowed(func):
        errors["func"] = f"Only the portal's own tasks can be scheduled: {allowed}."
    if hook and not task_allowed(hook):
        errors["hook"] = f"A hook must be one of the portal's own tasks, or empty: {allowed}."
    try:
        options = sorted(Q_OPTION_KEYS & set(schedule_kwargs_parse(kwargs or "")))
    except ValidationError as exc:
        errors.update(exc.message_dict)
    else:
        if options:
            errors["kwargs"] = (
                f"Queue options cannot be set here ({', '.join(options)}): they name more code to run."
            )
    if errors:
        raise ValidationError(errors)
