from notifications.admin import sources  # noqa: F401  (registers the source admins)
from notifications.counters import admin as counters_admin  # noqa: F401 - registers the counter admins
from notifications.counters import console  # noqa: F401 - registers the counters panel
