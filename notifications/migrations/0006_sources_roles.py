"""The roles and the subscriber sources: viewers see them; operators also edit a source's
audience, rules and paths and test its connection. Where a source's key goes (Mailchimp's
server prefix and key variable, a REST source's URL, auth and secret variable) and adding a
source stay with superusers or whoever they grant ``change_*_endpoint`` to."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODELS = ("mailchimpsource", "mailchimprule", "restsource")
ADD = {
    "Sync viewers": [f"view_{model}" for model in MODELS],
    "Sync operators": [f"view_{model}" for model in MODELS]
    + [
        "change_mailchimpsource",
        "add_mailchimprule",
        "change_mailchimprule",
        "delete_mailchimprule",
        "change_restsource",
        "test_mailchimp_connection",
        "test_rest_connection",
    ],
}


def grant(apps, schema_editor):
    # Permissions are made after migrations run (post_migrate); make them now.
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ADD.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *[Permission.objects.get(content_type__app_label="notifications", codename=c) for c in codenames]
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


class Migration(migrations.Migration):
    dependencies = [("notifications", "0005_sources"), ("sync", "0019_roles_alerts_and_steps")]
    operations = [migrations.RunPython(grant, revoke)]
