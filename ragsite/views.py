"""The project's own page: Prometheus metrics for operators (the chat's
views are the chat app's, chat/views.py)."""

import hmac

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from ragsite import metrics


@require_GET
def metrics_page(request):
    """Prometheus metrics (ragsite/metrics.py) for a signed-in staff member,
    or a scraper sending `Authorization: Bearer <RAG_METRICS_TOKEN>`."""
    if not (request.user.is_authenticated and request.user.is_staff) and not metrics_token_ok(request):
        response = HttpResponse("Metrics are for staff, or a scraper with RAG_METRICS_TOKEN.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response["Content-Type"] = "text/plain; charset=utf-8"
        return response
    return HttpResponse(metrics.exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")


def metrics_token_ok(request) -> bool:
    token = settings.RAG_METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
