"""Schedule the daily reconciliation of every active site with Wix."""

from django.db import migrations


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="sync: daily reconciliation",
        defaults={"func": "sync.tasks.reconcile_all_task", "schedule_type": "D", "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="sync: daily reconciliation").delete()


class Migration(migrations.Migration):
    dependencies = [("sync", "0005_reconciliation_runs"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(add_schedule, remove_schedule)]
