"""The operations console. Actions only call services; logs and mirrors are read-only."""

from sync.admin import external, wix  # noqa: F401 - registers the admins
