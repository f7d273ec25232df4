from django.apps import AppConfig


class TriageConfig(AppConfig):
    name = "triage"
    verbose_name = "Triage"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .dashboard import access

        # Open dashboard sockets lose access on logout, deactivation, permission removal.
        access.connect_signals()
