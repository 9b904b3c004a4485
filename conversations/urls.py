from django.contrib.auth import views as auth_views
from django.urls import path

from conversations import controls_views, sidebar_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("c/new/", views.conversation_new, name="conversation_new"),
    path("c/new/switches/", controls_views.new_chat_switches, name="new_chat_switches"),
    path("c/<uuid:uuid>/", views.conversation_detail, name="conversation"),
    path("c/<uuid:uuid>/open/", views.message_open, name="message_open"),
    path("c/<uuid:uuid>/messages/", views.conversation_messages, name="conversation_messages"),
    path("c/<uuid:uuid>/settings/", views.conversation_settings, name="conversation_settings"),
    path("c/<uuid:uuid>/model/", controls_views.conversation_model, name="conversation_model"),
    path(
        "c/<uuid:uuid>/switches/",
        controls_views.conversation_switches,
        name="conversation_switches",
    ),
    path("c/<uuid:uuid>/personas/", views.persona_save, name="persona_save"),
    path("c/<uuid:uuid>/summary/regenerate/", views.summary_regenerate, name="summary_regenerate"),
    path("c/<uuid:uuid>/attachments/", views.attachment_upload, name="attachment_upload"),
    path("c/<uuid:uuid>/rename/", sidebar_views.conversation_rename, name="conversation_rename"),
    path("c/<uuid:uuid>/archive/", sidebar_views.conversation_archive, name="conversation_archive"),
    path(
        "c/<uuid:uuid>/unarchive/",
        sidebar_views.conversation_unarchive,
        name="conversation_unarchive",
    ),
    path("c/<uuid:uuid>/delete/", sidebar_views.conversation_delete, name="conversation_delete"),
    path("archived/", sidebar_views.archived_list, name="archived"),
    path("search/", sidebar_views.conversation_search, name="search"),
    path("attachments/", views.attachment_new, name="attachment_new"),
    path("attachments/<uuid:uuid>/", views.attachment_file, name="attachment"),
    path("messages/<uuid:uuid>/", views.message_full, name="message_full"),
    path("usage/", views.usage_page, name="usage"),
    path("usage/statement.csv", views.usage_statement_csv, name="usage-statement-csv"),
    path("accounts/login/", views.ChatLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/password/", views.password_change, name="password_change"),
]
