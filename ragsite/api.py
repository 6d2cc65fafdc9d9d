"""The site's own API view: a token for a user name and password."""

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from ragsite.throttling import SignInThrottle


class TokenView(ObtainAuthToken):
    """DRF's token view, throttled: per address (the "token" rate), and a user
    name locked after failed sign-ins (ragsite.throttling) is refused."""

    throttle_classes = [SignInThrottle, ScopedRateThrottle]
    throttle_scope = "token"
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES
