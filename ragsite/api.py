"""The site's own API views: a token for a user name and password; the
API's interactive documentation."""

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from knox.models import AuthToken
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from ragsite.sign_in_throttle import SignInThrottle

# Tokens one user may hold at once; a new one beyond this replaces the oldest.
TOKENS_PER_USER = 10


class TokenResponse(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")
    expiry = serializers.DateTimeField(help_text="When it stops working (RAG_TOKEN_TTL_DAYS after it was given).")


class TokenView(APIView):
    """A new API token for a user name and password, throttled: per address
    (the "token" rate), and a user name locked after failed sign-ins
    (ragsite.sign_in_throttle) is refused. Tokens are django-rest-knox's: the
    database keeps only a SHA-512 hash of each, and each expires; a user may
    hold TOKENS_PER_USER (one per client), expired ones are deleted when one of
    the user's tokens is next used."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = [SignInThrottle, ScopedRateThrottle]
    throttle_scope = "token"
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES

    @extend_schema(request=AuthTokenSerializer, responses=TokenResponse)
    def post(self, request):
        credentials = AuthTokenSerializer(data=request.data, context={"request": request})
        credentials.is_valid(raise_exception=True)
        user = credentials.validated_data["user"]
        token, key = AuthToken.objects.create(user)
        # Knox reads all of a user's tokens at each request: a client that asks
        # for a token on every run replaces its oldest, beyond TOKENS_PER_USER.
        kept = AuthToken.objects.filter(user=user).order_by("-created").values_list("pk", flat=True)[:TOKENS_PER_USER]
        AuthToken.objects.filter(user=user).exclude(pk__in=list(kept)).delete()
        return Response({"token": key, "expiry": token.expiry})


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI for /api/schema/, from the installed drf-spectacular-sidecar
    (no CDN). The split view serves the start-up script from this same
    address, and templates/api/docs.html drops the package's inline <style>,
    so the page runs under the site's own strict CSP: nothing is relaxed."""

    url_name = "api-schema"
    template_name = "api/docs.html"
    title = "Ask your documents — API"
