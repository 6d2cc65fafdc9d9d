"""The admin's name: the site's own, not Django's stock branding."""

from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, User

from core.changelists import BoundedChangelist

admin.site.site_header = "Ask your documents — admin"
admin.site.site_title = "Ask your documents — admin"
admin.site.index_title = "Documents, collections and users"


# Django's own admins of users and groups, bounded the same way.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(BoundedChangelist, auth_admin.UserAdmin):
    pass


@admin.register(Group)
class GroupAdmin(BoundedChangelist, auth_admin.GroupAdmin):
    pass
