"""The two staff roles, as groups with explicit permissions.

Sync viewers read everything but secrets and trigger nothing. Sync operators also edit
mappings and links and start backfills, resyncs, replays, retries and connection tests;
changing where a credential goes (a system's base URL or secret variable, a site's API URL,
keys or secret variables), endpoints, schedules and users stays with superusers or whoever
they grant it to. Running the migration again brings both groups back to these lists.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = [
    ("sync", model)
    for model in (
        "wixsite",
        "event",
        "policy",
        "ticketdefinition",
        "mirrorchange",
        "backfillrun",
        "reconciliationrun",
        "webhookdelivery",
        "externalsystem",
        "externalendpoint",
        "fieldmapping",
        "externallink",
        "linkrepair",
        "outboundwork",
        "synclog",
    )
] + [("django_q", model) for model in ("schedule", "success", "failure")]

# Each user sees and revokes only their own tokens (portal/admin.py).
OWN_TOKENS = [("portal", "add_apitoken"), ("portal", "view_apitoken"), ("portal", "delete_apitoken")]

GROUPS = {
    "Sync viewers": [(app, f"view_{model}") for app, model in VIEW] + OWN_TOKENS,
    "Sync operators": [(app, f"view_{model}") for app, model in VIEW]
    + OWN_TOKENS
    + [
        # Mappings are edited on the system's page, which needs change_externalsystem; the
        # base URL and secret variable there need change_system_endpoint, which operators lack.
        ("sync", "change_externalsystem"),
        ("sync", "add_fieldmapping"),
        ("sync", "change_fieldmapping"),
        ("sync", "delete_fieldmapping"),
        ("sync", "change_externallink"),
        ("sync", "start_backfill"),
        ("sync", "resync"),
        ("sync", "replay_webhook"),
        ("sync", "retry_work"),
        ("sync", "test_connection"),
    ],
}


def groups_create(apps, schema_editor):
    # Permissions are made after migrations run (post_migrate); make them now so a fresh
    # database gets its groups in the same migrate.
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = []
        for app_label, codename in codenames:
            permissions.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)


def groups_remove(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUPS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0012_permissions_and_secret_prefixes"),
        ("portal", "0001_api_token"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(groups_create, groups_remove)]
