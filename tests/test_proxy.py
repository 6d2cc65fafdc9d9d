"""The buffering proxy's configuration (ragsite/proxy.py, docker/nginx.conf.template);
slow clients against it: tests/adversarial/test_responsiveness.py."""

import shutil
import subprocess

import pytest
from django.core.management import call_command

from ragsite import proxy


def test_every_name_of_ours_is_filled_and_nginx_variables_are_left_alone():
    text = proxy.render("listen ${LISTEN};\nproxy_set_header Host $http_host;\n", {"LISTEN": "127.0.0.1:9"})
    assert text == "listen 127.0.0.1:9;\nproxy_set_header Host $http_host;\n"


def test_a_name_without_a_value_is_refused_by_name():
    with pytest.raises(ValueError, match="LISTEN, UPSTREAM"):
        proxy.render("listen ${LISTEN}; server ${UPSTREAM};", {})


@pytest.mark.parametrize("value", ["80; include /etc/passwd", "a b", "", "x}", "$host"])
def test_a_value_that_would_change_the_configuration_is_refused(value):
    with pytest.raises(ValueError, match="cannot go into"):
        proxy.render("listen ${LISTEN};", {"LISTEN": value})


def test_the_limits_follow_the_settings(settings, tmp_path):
    settings.RAG_MAX_UPLOAD_MB = 7
    settings.RAG_PROXY_HEADER_TIMEOUT = 4
    settings.RAG_PROXY_BODY_TIMEOUT = 9
    call_command(
        "proxy_config", "--listen", "127.0.0.1:8123", "--upstream", "127.0.0.1:8124", "--prefix", str(tmp_path)
    )
    text = (tmp_path / "nginx.conf").read_text()
    assert "client_max_body_size 9m;" in text  # the app's limit and its form, so the app says why
    assert "client_header_timeout 4s;" in text and "client_body_timeout 9s;" in text
    assert "listen 127.0.0.1:8123;" in text and "server 127.0.0.1:8124;" in text
    assert "${" not in text


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (make proxy-deps)")
def test_nginx_accepts_the_rendered_configuration(tmp_path):
    conf = proxy.write(tmp_path, proxy.ProxyOptions("127.0.0.1:8123", "127.0.0.1:8124", 50, 10, 30))
    checked = subprocess.run(
        ["nginx", "-t", "-e", "stderr", "-p", str(tmp_path), "-c", conf.name], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
