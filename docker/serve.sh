#!/bin/sh
# Serves the app as `make run` does: nginx, the buffering proxy, on HOST:PORT
# in front of gunicorn on 127.0.0.1:APP_PORT, so that slow clients wait in
# nginx and never hold a gunicorn thread (docker/nginx.conf.template). Where
# nginx is not installed, gunicorn serves HOST:PORT alone, with a warning.
#   docker/serve.sh HOST PORT APP_PORT [gunicorn arguments...]
set -e
host=$1 port=$2 app_port=$3
shift 3
bin=${BIN:-.venv/bin}

if command -v nginx >/dev/null 2>&1; then
  conf=$("$bin/python" manage.py proxy_config --listen "$host:$port" --upstream "127.0.0.1:$app_port")
  nginx -e stderr -p "$(dirname "$conf")" -c nginx.conf -g 'daemon off;' &
  proxy=$!
  trap 'kill $proxy 2>/dev/null; wait $proxy 2>/dev/null' EXIT INT TERM
  # The app reads the client's address from nginx's X-Forwarded-For.
  RAG_NUM_PROXIES=1 "$bin/gunicorn" ragsite.wsgi --bind "127.0.0.1:$app_port" "$@"
else
  echo "nginx is not installed (make proxy-deps): gunicorn serves alone, and slow clients can hold its threads." >&2
  exec "$bin/gunicorn" ragsite.wsgi --bind "$host:$port" "$@"
fi
