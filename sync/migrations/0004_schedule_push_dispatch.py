"""Schedule the push dispatcher: due retries, and work stuck in flight after a worker died."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="sync: push dispatch",
        defaults={"func": "sync.tasks.push_dispatch_task", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="sync: push dispatch").delete()


class Migration(migrations.Migration):
    dependencies = [("sync", "0003_external_systems"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(add_schedule, remove_schedule)]
