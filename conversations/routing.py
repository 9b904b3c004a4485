from django.urls import path

from conversations.consumers import ConversationConsumer

# Django's path() is typed for views; Channels routes ASGI applications with it.
websocket_urlpatterns = [
    path("ws/c/<uuid:uuid>/", ConversationConsumer.as_asgi()),  # type: ignore[arg-type]
]
