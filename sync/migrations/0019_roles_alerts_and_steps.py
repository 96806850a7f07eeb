"""The roles see the new rows (backfill steps, alerts), and operators may resume a paused system."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ADD = {
    "Sync viewers": [("sync", "view_backfillstep"), ("sync", "view_targetalert")],
    "Sync operators": [
        ("sync", "view_backfillstep"),
        ("sync", "view_targetalert"),
        ("sync", "resume_system"),
    ],
}


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
            *[Permission.objects.get(content_type__app_label=app, codename=code) for app, code in codenames]
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ADD.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(
                *Permission.objects.filter(
                    codename__in=[code for _, code in codenames], content_type__app_label="sync"
                )
            )


class Migration(migrations.Migration):
    dependencies = [("sync", "0018_alerts_and_pause"), ("sync", "0013_roles")]
    operations = [migrations.RunPython(grant, revoke)]
