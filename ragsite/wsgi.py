import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
application = get_wsgi_application()

# gunicorn runs no system checks: on a failing one the web worker stops here
# ("Worker failed to boot", with the messages), not at the first question.
from core.checks import require_no_errors  # noqa: E402  (after Django is set up)

require_no_errors()
