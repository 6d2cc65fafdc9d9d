"""Identifiers a question names (words joined by underscores: a setting, a
function, a view, "work_mem", "pg_stat_activity") and whether retrieved text
mentions them. Pure.

A named identifier that none of the retrieved passages mentions (their
text, title or heading) is one the documents do not describe: hybrid search
ranks a passage holding so rare a word near the top whenever one exists
among those the asker may read. "default innodb_buffer_pool_size for
postgres?" is then not in the documents (generation/gathering.py), however
much the passages about PostgreSQL's buffers look like an answer.

The converse does not hold: evidence that mentions the named identifier
need not hold what is asked about it. Letting its score alone decide (a
lower threshold, no runner-up test) answered seven more PostgreSQL
questions, five of them wrongly (docs/BENCHMARKS.md), and was dropped.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"(?<![a-z0-9_.-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![a-z0-9_])")


def named(question: str) -> tuple[str, ...]:
    """The identifiers in the question, lower-cased, first occurrence first."""
    return tuple(dict.fromkeys(_NAME.findall(question.lower())))


def mentions(text: str, name: str) -> bool:
    """Whether `text` holds `name` as a whole identifier ("work_mem" is not
    mentioned by "maintenance_work_mem")."""
    return re.search(rf"(?<![a-z0-9_]){re.escape(name)}(?![a-z0-9_])", text.lower()) is not None


def unmentioned(names: tuple[str, ...], texts: list[str]) -> tuple[str, ...]:
    """The names that none of `texts` mentions."""
    return tuple(name for name in names if not any(mentions(text, name) for text in texts))
