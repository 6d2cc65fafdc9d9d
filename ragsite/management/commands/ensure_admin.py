import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the admin account if missing and print its credentials."

    def handle(self, *args, **options):
        username = settings.RAG_ADMIN_USERNAME
        stored = settings.DATA_DIR / "admin-password.txt"
        password = settings.RAG_ADMIN_PASSWORD or (
            stored.read_text().strip() if stored.exists() else secrets.token_urlsafe(12)
        )
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True, "is_superuser": True})
        if created or settings.RAG_ADMIN_PASSWORD or not stored.exists():
            user.set_password(password)
            user.is_staff = user.is_superuser = True
            user.save()
        if not settings.RAG_ADMIN_PASSWORD:
            stored.write_text(password)
            stored.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Admin login: {username} / {password}"))
