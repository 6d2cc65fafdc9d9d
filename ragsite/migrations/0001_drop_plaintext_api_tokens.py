"""DRF's authtoken table kept API tokens in plain text; tokens are now
django-rest-knox's (hashed, expiring), so the old table goes, with the
secrets in it. Clients ask POST /api/token/ for a new token."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("knox", "0009_extend_authtoken_field")]

    operations = [migrations.RunSQL("DROP TABLE IF EXISTS authtoken_token", reverse_sql=migrations.RunSQL.noop)]
