"""Retention: partial indexes on the rows that still hold a body, and the daily prune."""

from django.conf import settings
from django.db import migrations, models


def schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="sync: retention",
        defaults={"func": "sync.tasks.retention_prune_task", "schedule_type": "D", "repeats": -1},
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="sync: retention").delete()


class Migration(migrations.Migration):

    dependencies = [
        ("django_q", "0018_task_success_index"),
        ('sync', '0020_console_figures'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(schedule, unschedule),
        migrations.AddIndex(
            model_name='synclog',
            index=models.Index(condition=models.Q(models.Q(('request_excerpt', ''), _negated=True), models.Q(('response_excerpt', ''), _negated=True), _connector='OR'), fields=['created_at'], name='synclog_body_kept_idx'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(condition=models.Q(('raw_body', ''), _negated=True), fields=['received_at'], name='webhook_body_kept_idx'),
        ),
    ]
