from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """A fake Wix site served by the portal itself; its URLs exist only with PORTAL_SANDBOX=1."""

    name = "sync.sandbox"
    label = "sandbox"
    verbose_name = "Sandbox (fake Wix)"
