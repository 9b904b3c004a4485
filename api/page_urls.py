from django.urls import path

from api import pages

urlpatterns = [
    path("", pages.api_settings, name="api_settings"),
    path("tokens/", pages.token_create, name="api_token_create"),
    path("tokens/<int:token_id>/revoke/", pages.token_revoke, name="api_token_revoke"),
    path("import/", pages.import_upload, name="api_import"),
    path("imports/<uuid:uuid>/", pages.import_job, name="api_import_job"),
]
