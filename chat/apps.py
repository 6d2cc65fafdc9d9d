from django.apps import AppConfig


class ChatConfig(AppConfig):
    """The browser door: the chat, the documents page and the source viewer
    (views, what they show, their templates). Static files are still the
    project's (ragsite/static/ragsite/): the sign-in and error pages share them."""

    name = "chat"
