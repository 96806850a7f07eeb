"""One scheduled sweep over every kind of job replaces the three dispatchers that each kind had."""

from django.db import migrations

OLD = {
    "sync: backfill sweep": "sync.tasks.backfill_sweep_task",
    "sync: push dispatch": "sync.tasks.push_dispatch_task",
    "sync: webhook dispatch": "sync.tasks.webhook_dispatch_task",
}


def one_sweep(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(func__in=OLD.values()).delete()
    Schedule.objects.update_or_create(
        name="sync: job sweep",
        defaults={"func": "sync.tasks.jobs_dispatch_task", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def three_again(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name="sync: job sweep").delete()
    for name, func in OLD.items():
        minutes = 5 if "backfill" in func else 1
        Schedule.objects.update_or_create(
            name=name, defaults={"func": func, "schedule_type": "I", "minutes": minutes, "repeats": -1}
        )


class Migration(migrations.Migration):
    dependencies = [("sync", "0014_jobs"), ("django_q", "0018_task_success_index")]

    operations = [migrations.RunPython(one_sweep, three_again)]
