from django.apps import AppConfig


class TriageConfig(AppConfig):
    name = "triage"
    verbose_name = "Triage"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .dashboard import access

        # Open dashboard sockets lose access on logout, deactivation, permission removal.
        access.connect_signals()

        from . import login_security

        # Login lockouts (django-axes) are recorded as SecurityEvent rows.
        login_security.connect_signals()

        from . import deploy_checks  # noqa: F401  (registers the placeholder-secret check)
