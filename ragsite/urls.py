from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from generation.api import AskView
from ingestion.api import DocumentCancelView, DocumentDetailView, DocumentListView, DocumentReindexView
from ragsite import views
from ragsite.api import ApiDocsView, TokenView
from ragsite.sign_in_throttle import throttled_sign_in
from retrieval.api import SearchView

urlpatterns = [
    path("", include("chat.urls")),  # the browser door
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
