from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ragsite import proxy


class Command(BaseCommand):
    requires_system_checks = []  # it writes a file: the app's checks run where the app starts
    help = (
        "Write the buffering proxy's nginx.conf (docker/nginx.conf.template) into a folder; "
        "then start it with: nginx -e stderr -p FOLDER -c nginx.conf -g 'daemon off;'"
    )

    def add_arguments(self, parser):
        parser.add_argument("--listen", default="0.0.0.0:8000", help="Where nginx listens: host:port.")
        parser.add_argument("--upstream", default="127.0.0.1:8001", help="Where gunicorn listens: host:port.")
        parser.add_argument("--prefix", default=None, help="nginx's folder (default: $RAG_DATA_DIR/proxy).")

    def handle(self, *args, listen, upstream, prefix, **options):
        folder = Path(prefix) if prefix else settings.DATA_DIR / "proxy"
        try:
            path = proxy.write(folder, proxy.ProxyOptions.from_settings(listen, upstream))
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(str(path))
