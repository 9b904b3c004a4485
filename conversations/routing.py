from django.urls import path

from conversations.consumers import ConversationConsumer
from conversations.user_socket import UserConsumer

# Django's path() is typed for views; Channels routes ASGI applications with it.
websocket_urlpatterns = [
    path("ws/c/<uuid:uuid>/", ConversationConsumer.as_asgi()),  # type: ignore[arg-type]
    # Pages without a chat: the user's events only (user_socket.py).
    path("ws/u/", UserConsumer.as_asgi()),  # type: ignore[arg-type]
]
