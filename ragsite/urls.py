from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from generation.api import AskView
from ingestion.api import DocumentCancelView, DocumentDetailView, DocumentListView, DocumentReindexView
from ragsite import views
from ragsite.api import ApiDocsView, TokenView
from ragsite.sign_in_throttle import throttled_sign_in
from retrieval.api import SearchView

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/<int:conversation_id>/", views.chat, name="conversation"),
    path("c/search", views.search_conversations, name="conversation-search"),
    path("c/<int:conversation_id>/m/<int:message_id>/", views.message, name="conversation-message"),
    path("c/<int:conversation_id>/branch/", views.conversation_branch, name="conversation-branch"),
    path("c/<int:conversation_id>/switch/", views.switch_version, name="conversation-switch"),
    path("c/<int:conversation_id>/export.<str:form>", views.export_conversation, name="conversation-export"),
    path("c/<int:conversation_id>/rename/", views.rename_conversation, name="conversation-rename"),
    path("c/<int:conversation_id>/delete/", views.delete_conversation, name="conversation-delete"),
    path("documents/", views.documents, name="documents"),
    path("documents/<int:document_id>/file", views.document_file, name="document-file"),
    path("documents/<int:document_id>/thumbnail.png", views.document_thumbnail, name="document-thumbnail"),
    path("c/<int:conversation_id>/m/<int:message_id>/feedback/", views.answer_feedback, name="answer-feedback"),
    path("documents/<int:document_id>/original", views.document_original, name="document-original"),
    path("citations/<int:citation_id>/page.png", views.citation_page, name="citation-page"),
    path("citations/<int:citation_id>/boxes", views.citation_boxes, name="citation-boxes"),
    path("citations/<int:citation_id>/feedback/", views.citation_feedback, name="citation-feedback"),
    path("citations/<int:citation_id>/opened/", views.citation_opened, name="citation-opened"),
    path("passages/<int:chunk_id>/around/", views.passage_neighbours, name="passage-neighbours"),
    path("accounts/login/", throttled_sign_in(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/login/", throttled_sign_in(admin.site.login)),  # before admin.site.urls, which has its own
    path("admin/", admin.site.urls),
    path("metrics", views.metrics_page, name="metrics"),
    path("api/search", SearchView.as_view(), name="api-search"),
    path("api/ask", AskView.as_view(), name="api-ask"),
    path("api/documents/", DocumentListView.as_view(), name="api-documents"),
    path("api/documents/<int:pk>/", DocumentDetailView.as_view(), name="api-document"),
    path("api/documents/<int:pk>/cancel/", DocumentCancelView.as_view(), name="api-document-cancel"),
    path("api/documents/<int:pk>/reindex/", DocumentReindexView.as_view(), name="api-document-reindex"),
    path("api/token/", TokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", ApiDocsView.as_view(), name="api-docs"),
]
