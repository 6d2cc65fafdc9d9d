"""Turns as a tree, the way chat products keep them: every message follows
its parent (a question follows the answer before it, an answer its
question), so that asking again adds a sibling answer and editing a question
adds a sibling question, each a version of that turn, and the turns after
an edited question stay on their own branch. The conversation shows one
branch: from the first question down to `Conversation.current`.

Conversations are small (tens of turns), so each call reads its messages'
ids and parents at once and walks them in Python."""

from __future__ import annotations

from dataclasses import dataclass

from generation.models import Conversation, Message


@dataclass(frozen=True)
class Tree:
    """The messages of a conversation by id: parent, role and children (oldest first)."""

    parent: dict[int, int | None]
    role: dict[int, str]
    children: dict[int | None, list[int]]

    @classmethod
    def of(cls, conversation: Conversation) -> Tree:
        parent, role, children = {}, {}, {}
        for pk, parent_id, kind in conversation.messages.order_by("pk").values_list("pk", "parent_id", "role"):
            parent[pk], role[pk] = parent_id, kind
            children.setdefault(parent_id, []).append(pk)
        return cls(parent, role, children)

    def newest_leaf(self, start: int | None) -> int | None:
        """Down from `start` (None: the top), always to the newest child."""
        at = start
        while self.children.get(at):
            at = self.children[at][-1]
        return at

    def branch(self, leaf: int | None) -> list[int]:
        """The ids from the first question down to `leaf`."""
        ids = []
        while leaf is not None:
            ids.append(leaf)
            leaf = self.parent.get(leaf)
        return ids[::-1]

    def versions(self, pk: int) -> list[int]:
        """`pk` and its siblings of the same role, oldest first: the versions of its turn."""
        role = self.role[pk]
        return [s for s in self.children.get(self.parent[pk], []) if self.role[s] == role]


def current_leaf(conversation: Conversation, tree: Tree) -> int | None:
    leaf = conversation.current_id
    if leaf is None or leaf not in tree.parent:
        return tree.newest_leaf(None)
    return leaf


def shown(conversation: Conversation) -> tuple[list[Message], Tree]:
    """The branch on show, as messages (first question first), and the tree."""
    tree = Tree.of(conversation)
    ids = tree.branch(current_leaf(conversation, tree))
    by_id = conversation.messages.prefetch_related("citations__chunk", "citations__document").in_bulk(ids)
    return [by_id[pk] for pk in ids], tree


def switch(conversation: Conversation, pk: int) -> None:
    """Show the version `pk` of its turn, and below it the branch last viewed
    there (the newest one, when none was): the branch left is remembered for
    every message on it."""
    tree = Tree.of(conversation)
    if pk not in tree.parent:
        raise LookupError(f"No message {pk} in this conversation.")
    viewed = {key: leaf for key, leaf in (conversation.viewed or {}).items() if leaf in tree.parent}

    def shown(leaf):  # every message on the branch down to `leaf` was last viewed with it
        viewed.update((str(node), leaf) for node in tree.branch(leaf))

    shown(current_leaf(conversation, tree))  # the branch left (turns added since the last switch included)
    remembered = viewed.get(str(pk))
    leaf = remembered if remembered is not None and pk in tree.branch(remembered) else tree.newest_leaf(pk)
    shown(leaf)
    conversation.current_id = leaf
    conversation.viewed = viewed
    # Not "updated": looking at a version does not reorder the list.
    conversation.save(update_fields=["current", "viewed"])


@dataclass(frozen=True)
class Place:
    """Where a new answer goes: the question it answers (an existing one when
    asked again, else a new one with `question` as its text, after `parent`)."""

    parent: int | None
    question: str
    existing: Message | None
    earlier: list[str]  # the questions before it on its branch, oldest first


def place(
    conversation: Conversation | None, question: str, *, edit_of: int | None = None, again_of: int | None = None
) -> Place:
    """A new question at the end of the branch on show; an edit of question
    `edit_of` (a sibling of it); or question `again_of` answered again."""
    if conversation is None:
        if edit_of or again_of:
            raise LookupError("Name the conversation of the question to edit or ask again.")
        return Place(None, question, None, [])
    tree = Tree.of(conversation)
    if again_of is not None:
        existing = _question(conversation, tree, again_of)
        return Place(existing.parent_id, existing.content, existing, _questions(conversation, tree, existing.parent_id))
    if edit_of is not None:
        edited = _question(conversation, tree, edit_of)
        return Place(edited.parent_id, question, None, _questions(conversation, tree, edited.parent_id))
    leaf = current_leaf(conversation, tree)
    if leaf is not None and tree.role[leaf] == Message.Role.USER:
        leaf = tree.parent[leaf]  # a question left without an answer: the new one takes its place
    return Place(leaf, question, None, _questions(conversation, tree, leaf))


def _question(conversation: Conversation, tree: Tree, pk: int) -> Message:
    if tree.role.get(pk) != Message.Role.USER:
        raise LookupError(f"No question {pk} in this conversation.")
    return conversation.messages.get(pk=pk)


def _questions(conversation: Conversation, tree: Tree, leaf: int | None) -> list[str]:
    ids = [pk for pk in tree.branch(leaf) if tree.role[pk] == Message.Role.USER]
    contents = dict(conversation.messages.filter(pk__in=ids).values_list("pk", "content"))
    return [contents[pk] for pk in ids]
