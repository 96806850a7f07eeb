from notifications.admin import sources  # noqa: F401  (registers the source admins)
