"""Accounts."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction


@transaction.atomic
def user_signup(*, username: str, password: str, email: str = "") -> User:
    """Create an account; the very first account of the site becomes its administrator."""
    user_model = get_user_model()
    # Serialise concurrent first sign-ups so exactly one of them becomes the admin.
    user_model.objects.select_for_update().order_by("pk").first()
    is_first = not user_model.objects.exists()
    user = user_model.objects.create_user(username=username, email=email, password=password)
    if is_first:
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    return user


def password_change(*, user: User, new_password: str) -> None:
    """Set the user's password. Every session made with the old one stops authenticating
    (Django checks the password's hash on each request) and its sockets close at once
    (socket_sessions, on the save); the caller keeps its own session with
    update_session_auth_hash."""
    user.set_password(new_password)
    user.save(update_fields=["password"])
