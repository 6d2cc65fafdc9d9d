"""The admin's name: the site's own, not Django's stock branding."""

import itertools

from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, User
from django.utils.text import smart_split

admin.site.site_header = "Ask your documents — admin"
admin.site.site_title = "Ask your documents — admin"
admin.site.index_title = "Documents, collections and users"


# A search of more words than this looks for the first ones only.
MAX_SEARCH_WORDS = 20


class BoundedChangelist:
    """A changelist that hostile query parameters cannot turn into a 500 or
    a slow query. The admin ANDs one clause per word of a search (each ORed
    over the search fields): a URL of a few thousand words made a query too
    deep for SQLite (a 500) and took PostgreSQL seconds to plan. (A NUL in a
    filter is refused for every page by ragsite.middleware.NulQueryMiddleware.)"""

    def get_search_results(self, request, queryset, search_term):
        words = list(itertools.islice(smart_split(search_term), MAX_SEARCH_WORDS))
        return super().get_search_results(request, queryset, " ".join(words))


# Django's own admins of users and groups, bounded the same way.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(BoundedChangelist, auth_admin.UserAdmin):
    pass


@admin.register(Group)
class GroupAdmin(BoundedChangelist, auth_admin.GroupAdmin):
    pass
