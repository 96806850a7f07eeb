"""The campaigns' migrations (0001-0004) and the subscriber sources' (0100-0101) were written
side by side; this joins the two lines (neither touches the other's tables)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("notifications", "0004_push"), ("notifications", "0101_sources_roles")]
    operations: list = []
