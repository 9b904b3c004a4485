from django.contrib.auth import views as auth_views
from django.urls import path

from conversations import views

urlpatterns = [
    path("", views.home, name="home"),
    path("c/new/", views.conversation_new, name="conversation_new"),
    path("c/<uuid:uuid>/", views.conversation_detail, name="conversation"),
    path("c/<uuid:uuid>/settings/", views.conversation_settings, name="conversation_settings"),
    path("c/<uuid:uuid>/personas/", views.persona_save, name="persona_save"),
    path("c/<uuid:uuid>/summary/regenerate/", views.summary_regenerate, name="summary_regenerate"),
    path("c/<uuid:uuid>/attachments/", views.attachment_upload, name="attachment_upload"),
    path("attachments/<uuid:uuid>/", views.attachment_file, name="attachment"),
    path("usage/", views.usage_page, name="usage"),
    path("accounts/login/", views.ChatLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
]
