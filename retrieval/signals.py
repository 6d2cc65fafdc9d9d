"""What retrieval announces; generation listens (retrieval never imports it)."""

from django.dispatch import Signal

# Sent when searches have switched to another retriever version. kwargs: name.
retriever_switched = Signal()
