"""Admin changelists that hostile query parameters cannot turn into a 500 or a slow query."""

import itertools

from django.utils.text import smart_split

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
