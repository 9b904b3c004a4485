from csp.decorators import csp_update
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from api import views

app_name = "api"

urlpatterns = [
    path("conversations/", views.ConversationListView.as_view(), name="conversations"),
    path("conversations/<uuid:uuid>/", views.ConversationDetailView.as_view(), name="conversation"),
    path(
        "conversations/<uuid:uuid>/messages/",
        views.MessageListView.as_view(),
        name="conversation-messages",
    ),
    path(
        "conversations/<uuid:uuid>/export/",
        views.ConversationExportView.as_view(),
        name="conversation-export",
    ),
    path("export/", views.ExportAllView.as_view(), name="export"),
    path("import/", views.ImportView.as_view(), name="import"),
    path("imports/<uuid:uuid>/", views.ImportJobView.as_view(), name="import_job"),
    # The schema and its docs are public: they describe the API, not anyone's data.
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[AllowAny], throttle_classes=[]),
        name="schema",
    ),
    # The split view loads its start-up script from a URL, so no inline script is needed;
    # Swagger UI's page still carries an inline <style>, allowed on this page only.
    path(
        "docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(
                url_name="api:schema", permission_classes=[AllowAny], throttle_classes=[]
            )
        ),
        name="docs",
    ),
    # Last: any other path under the API (a malformed id, a typo) is a JSON 404 like the
    # API's other errors, not the site's HTML page. Paths without the trailing slash still
    # get Django's redirect to the slashed one first.
    re_path(r"^(?:[\s\S]*/)?$", views.endpoint_not_found, name="not-found"),
]
