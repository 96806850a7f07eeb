"""The notifications app's console pages (each feature registers its own)."""

from notifications.counters import admin as counters_admin  # noqa: F401 - registers the admins
from notifications.counters import console  # noqa: F401 - registers the panel
