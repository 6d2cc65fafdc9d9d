#!/bin/sh
# Container entrypoint for docker/Dockerfile and docker/Dockerfile.gpu.
#   web     apply migrations, then serve with gunicorn (extra arguments go to gunicorn)
#   worker  run the Celery worker (extra arguments go to celery)
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
  worker)
    shift
    exec celery -A ragsite worker --loglevel=INFO --concurrency=1 "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
