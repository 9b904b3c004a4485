from django.contrib import admin
from django.urls import include, path

from chatsite import health
from conversations.observability import exposition

urlpatterns = [
    # For load balancers and orchestrators: no slash, no sign-in, never cached.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", exposition.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    # set_language: the language switch posts here; it sets the cookie and goes back.
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("api.urls")),
    path("settings/api/", include("api.page_urls")),
    path("", include("conversations.urls")),
]
