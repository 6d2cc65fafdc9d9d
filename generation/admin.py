from django.contrib import admin

from generation.models import Citation, Conversation, GuardrailEvent, Message


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(GuardrailEvent)
class GuardrailEventAdmin(ReadOnlyAdmin):
    list_display = ["created", "user", "direction", "score", "text"]
    list_filter = ["direction"]


class CitationInline(admin.TabularInline):
    model = Citation
    fields = ["number", "title", "filename", "page", "score", "quote"]
    readonly_fields = fields
    extra = 0
    can_delete = False


class MessageInline(admin.StackedInline):
    model = Message
    fields = ["role", "content", "found", "guardrail_intervened", "timings"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ["title", "user", "created", "updated"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["conversation", "role", "content", "created"]
    inlines = [CitationInline]
