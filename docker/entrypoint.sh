#!/bin/sh
# Container entrypoint for docker/Dockerfile and docker/Dockerfile.gpu.
#   web     apply migrations, then serve with gunicorn (extra arguments go to gunicorn)
#   worker  run the Celery worker (extra arguments go to celery)
#   proxy   nginx, the buffering proxy, on :8000 in front of UPSTREAM (default web:8000)
#   other   run that command as given, e.g. `python manage.py ensure_admin`
set -e

[ "$#" -gt 0 ] || set -- web

case "$1" in
  web)
    shift
    python manage.py migrate --noinput
    exec gunicorn ragsite.wsgi --bind 0.0.0.0:8000 --workers 2 --threads 48 --timeout 300 \
      --access-logfile - "$@"
    ;;
  proxy)
    conf=$(python manage.py proxy_config --listen 0.0.0.0:8000 --upstream "${UPSTREAM:-web:8000}" --prefix /tmp/proxy)
    exec nginx -e stderr -p /tmp/proxy -c "$conf" -g 'daemon off;'
    ;;
  worker)
    shift
    exec celery -A ragsite worker --loglevel=INFO --concurrency=1 "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
