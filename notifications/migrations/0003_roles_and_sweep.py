"""Operators run campaigns (send now, send a test, cancel) and keep the local list; viewers see
it all. The campaign sweep re-plans every upcoming sale start every 5 minutes, for what a
mirror_changed signal missed."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODELS = ["salestartcampaign", "notification", "localsubscriber", "emailsuppression", "emailtemplate",
          "sitenotificationsettings"]
VIEW = [f"view_{m}" for m in MODELS]
ADD = {
    "Sync viewers": VIEW,
    "Sync operators": VIEW
    + ["send_campaign", "cancel_campaign"]
    + [f"{verb}_{m}" for m in ("localsubscriber", "emailsuppression") for verb in ("add", "change", "delete")]
    + [f"{verb}_{m}" for m in ("emailtemplate", "sitenotificationsettings") for verb in ("add", "change")],
}
SWEEP = "notifications: campaign sweep"


def grant(apps, schema_editor):
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ADD.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="notifications", codename__in=codenames)
        )
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=SWEEP,
        defaults={
            "func": "notifications.tasks.campaigns_sweep_task",
            "schedule_type": "I",
            "minutes": 5,
            "repeats": -1,
        },
    )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ADD.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="notifications", codename__in=codenames)
            )
    apps.get_model("django_q", "Schedule").objects.filter(name=SWEEP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_campaigns"),
        ("sync", "0019_roles_alerts_and_steps"),
        ("django_q", "0018_task_success_index"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
