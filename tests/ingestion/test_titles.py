"""Document titles people read (ingestion/titles.py): the file's own title,
else its first heading, else its name as words; never a slug."""

import pytest

from ingestion import titles
from tests.conftest import ingest_path


def test_a_file_name_becomes_words():
    assert titles.from_filename("support-faq.md") == "Support faq"
    assert titles.from_filename("travel_policy_2026.pdf") == "Travel policy 2026"
    assert titles.from_filename("README") == "README"


def test_the_best_title_is_the_files_own_then_its_heading_then_its_name():
    assert titles.best("Animal Handbook", ["Dogs"], "a.pdf") == "Animal Handbook"
    assert titles.best("", ["Northwind Travel Policy", "Booking"], "travel-policy.pdf") == "Northwind Travel Policy"
    assert titles.best("Microsoft Word - draft3.doc", ["Expense rules"], "draft3.pdf") == "Expense rules"
    assert titles.best("untitled", [], "support-faq.txt") == "Support faq"
    assert titles.best("support-faq", [], "support-faq.txt") == "Support faq"  # the stem is no title
    assert titles.best("", ["Luggage"], "Zanzibar ferry rules.md") == "Zanzibar ferry rules"  # a name a person wrote


@pytest.mark.slow
def test_an_upload_without_a_title_takes_its_first_heading(db, tmp_path):
    path = tmp_path / "support-faq.txt"
    path.write_text("Resetting a password\n\nOpen Settings, then Security, then choose Reset.\n")
    document = ingest_path(path)
    assert document.title == "Support faq"  # no heading in plain text: the name as words, not the slug
    markdown = tmp_path / "card-guide.md"
    markdown.write_text("Intro line.\n\n## Annual fees\n\nThe Gold card costs 95 euros a year.\n")
    assert ingest_path(markdown).title == "Annual fees"
