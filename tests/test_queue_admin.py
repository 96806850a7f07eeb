"""No code execution from the admin: schedules and re-queued tasks (issue 10, point 1)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone
from django_q.models import Failure, Schedule

from portal.task_guard import task_allowed
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue_staff(staff: User) -> User:
    """Staff holding every django-q2 permission there is, as an attacker with a staff login might."""
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="django_q"))
    return User.objects.get(pk=staff.pk)


def _schedule_form(**fields: str) -> dict[str, str]:
    return {
        "name": "mine",
        "func": "sync.tasks.jobs_dispatch_task",
        "hook": "",
        "args": "",
        "kwargs": "",
        "schedule_type": "O",
        "repeats": "-1",
        "next_run_0": "2030-01-01",
        "next_run_1": "00:00:00",
        "cluster": "",
        "intended_date_kwarg": "",
        "minutes": "",
        "cron": "",
        **fields,
    }


def test_staff_with_every_queue_permission_cannot_add_or_change_a_schedule(queue_staff: User) -> None:
    client = client_for(queue_staff)
    add = reverse("admin:django_q_schedule_add")
    assert client.get(add).status_code == 403
    client.post(add, _schedule_form(func="subprocess.getoutput", args="'id'"))
    assert not Schedule.objects.filter(name="mine").exists()
    existing = Schedule.objects.get(name="sync: job sweep")
    change = reverse("admin:django_q_schedule_change", args=[existing.pk])
    assert client.get(change).status_code == 200  # may look
    client.post(change, _schedule_form(name=existing.name, func="subprocess.getoutput", args="'id'"))
    assert Schedule.objects.get(pk=existing.pk).func == "sync.tasks.jobs_dispatch_task"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"func": "subprocess.getoutput", "args": "'id'"}, "func"),
        ({"func": "os.system"}, "func"),
        ({"func": "sync.tasks.backfill_execute"}, "func"),  # imported into sync.tasks, not a task
        ({"func": "sync.tasks.nothing_task"}, "func"),
        ({"hook": "os.system"}, "hook"),
        ({"kwargs": "{'q_options': {'hook': 'os.system'}}"}, "kwargs"),
        ({"kwargs": "hook='os.system'"}, "kwargs"),
        ({"kwargs": "chain=[('os.system', ('id',))]"}, "kwargs"),
    ],
)
def test_a_superuser_can_only_schedule_the_portals_own_tasks(
    admin_user: User, fields: dict[str, str], field: str
) -> None:
    response = client_for(admin_user).post(reverse("admin:django_q_schedule_add"), _schedule_form(**fields))
    assert response.status_code == 200 and field in response.context["adminform"].form.errors
    assert not Schedule.objects.filter(name="mine").exists()


def test_a_superuser_schedules_a_portal_task(admin_user: User) -> None:
    response = client_for(admin_user).post(reverse("admin:django_q_schedule_add"), _schedule_form())
    assert response.status_code == 302
    assert Schedule.objects.get(name="mine").func == "sync.tasks.jobs_dispatch_task"


def test_the_allow_list_holds_only_tasks_defined_in_the_task_modules() -> None:
    assert task_allowed("sync.tasks.push_drain_task")
    assert not task_allowed("sync.tasks.push_drain")  # imported service
    assert not task_allowed("sync.tasks")
    assert not task_allowed("os.system")
    assert not task_allowed("portal.task_guard.task_allowed")


def _failure(func: str) -> Failure:
    now = timezone.now()
    return Failure.objects.create(
        id=f"id-{func}", name=f"n-{func}", func=func, args=("id",), started=now, stopped=now, success=False
    )


def test_only_superusers_requeue_failed_tasks_and_only_portal_tasks(
    queue_staff: User, admin_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    import portal.admin

    queued: list[str] = []
    monkeypatch.setattr(portal.admin, "async_task", lambda func, *a, **k: queued.append(func))
    evil, ours = _failure("subprocess.getoutput"), _failure("sync.tasks.jobs_dispatch_task")
    url = reverse("admin:django_q_failure_changelist")
    selected = {"action": "resubmit_task", "_selected_action": [evil.pk, ours.pk]}
    client_for(queue_staff).post(url, selected)
    assert queued == [] and Failure.objects.count() == 2
    response = client_for(admin_user).post(url, selected, follow=True)
    assert "1 task(s) refused" in response.content.decode()
    assert queued == ["sync.tasks.jobs_dispatch_task"]
    assert list(Failure.objects.values_list("func", flat=True)) == ["subprocess.getoutput"]
