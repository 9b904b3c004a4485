"""What middleware and login_required add to a request, spelled out for the type checker."""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class AuthenticatedHttpRequest(HttpRequest):
    """A request to a login_required view: `user` is signed in (never AnonymousUser), and
    HtmxMiddleware (in every request's MIDDLEWARE) has set `htmx`."""

    user: User
    htmx: HtmxDetails
