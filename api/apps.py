from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the Bearer scheme with drf-spectacular so the schema documents it.
        from api import schema  # noqa: F401
