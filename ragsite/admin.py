"""The admin's name: the site's own, not Django's stock branding."""

from django.contrib import admin

admin.site.site_header = "Ask your documents — admin"
admin.site.site_title = "Ask your documents — admin"
admin.site.index_title = "Documents, collections and users"
