"""The roles and the counters: viewers see counters and their Velo pushes; operators also
add, change and delete counters (and so use "Publish now")."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# The refreshes behind counters are sync's rows, seen here with the counters they feed.
VIEW = [
    ("notifications", "view_ticketcounter"),
    ("notifications", "view_counterpush"),
    ("sync", "view_ticketdefinitionrefresh"),
]
ADD = {
    "Sync viewers": VIEW,
    "Sync operators": [
        *VIEW,
        ("notifications", "add_ticketcounter"),
        ("notifications", "change_ticketcounter"),
        ("notifications", "delete_ticketcounter"),
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
                *[
                    p
                    for app, code in codenames
                    for p in Permission.objects.filter(content_type__app_label=app, codename=code)
                ]
            )


class Migration(migrations.Migration):
    dependencies = [("notifications", "0007_counters"), ("sync", "0019_roles_alerts_and_steps")]
    operations = [migrations.RunPython(grant, revoke)]
