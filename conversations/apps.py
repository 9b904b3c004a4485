from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save


def _sync_catalogue(sender, **kwargs) -> None:
    from conversations import services

    services.catalogue_sync_presets()


def _forget_prices(sender, instance, **kwargs) -> None:
    from conversations.usage import prices

    prices.price_schedule_forget()


class ConversationsConfig(AppConfig):
    name = "conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Built-in providers and models exist after every migrate (and test database flush).
        post_migrate.connect(_sync_catalogue, sender=self)
        # Replies in flight carry their final HTML (the message and the header's context
        # gauge); the presentation layer renders it.
        from conversations import pages
        from conversations.live import rendering

        rendering.use_renderer(pages.reply_final_html)
        # Open sockets hear when their user's sessions may have ended.
        from conversations import socket_sessions

        socket_sessions.connect_signals()
        # A process that saves a price forgets its copy of that model's schedule at once.
        from conversations.models import ModelPrice, PriceBand

        for model in (ModelPrice, PriceBand):
            post_save.connect(_forget_prices, sender=model)
            post_delete.connect(_forget_prices, sender=model)
