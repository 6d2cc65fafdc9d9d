"""The site's WSGI application with the stand-in embedder (tests/fakes.py),
for gunicorn started by tests/adversarial/test_responsiveness.py."""

from ragsite.wsgi import application  # noqa: F401  (sets Django up first)
from tests import fakes

fakes.install_in_server()
