"""Schedule the webhook dispatcher: due retries, and deliveries a killed worker left behind."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="sync: webhook dispatch",
        defaults={"func": "sync.tasks.webhook_dispatch_task", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="sync: webhook dispatch").delete()


class Migration(migrations.Migration):
    dependencies = [("sync", "0008_webhook_processing"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(add_schedule, remove_schedule)]
