"""The chat's routes (included at the site's root by ragsite/urls.py, names unprefixed)."""

from django.urls import path

from chat import views

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
]
