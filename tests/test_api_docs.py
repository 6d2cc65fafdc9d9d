"""The API's interactive documentation at /api/docs/: Swagger UI served from
the installed drf-spectacular-sidecar (no CDN), under the site's strict CSP."""

import re

from django.contrib.staticfiles import finders

from tests.test_security_headers import blocked_by_csp


def test_it_serves_the_docs_page_under_the_strict_policy(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert blocked_by_csp(html) == []
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert not [url for url in sources if "//" in url]  # nothing from another host
    assert any(url.endswith("swagger-ui-bundle.js") for url in sources)


def test_its_files_are_installed_and_its_script_points_at_the_schema(client):
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css")
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()
