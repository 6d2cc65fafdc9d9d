"""ingestion/html_structure.py: a manual's headings, definition terms and
title survive main-content extraction (real trafilatura, real chunker)."""

from pathlib import Path

import trafilatura

from ingestion.chunking import chunk_pages
from ingestion.html_structure import mark, restore, title
from ingestion.parsing import parse_file

ROOT = Path(__file__).resolve().parents[2]
SETTING = (
    "Sets the base maximum amount of memory to be used by a query operation before writing to temporary disk files."
)
# The shape of DocBook's HTML (PostgreSQL's manual, and many others): the
# section titles inside "titlepage" wrappers, a table of contents, settings
# in a definition list, and admonitions with a "Note" heading of their own.
MANUAL = f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!DOCTYPE html><html><head><title>20.4. Resource Consumption</title></head><body>
<div class="navheader"><a href="index.html">Home</a> <a href="next.html">Next</a></div>
<div class="sect1"><div class="titlepage"><div><div><h2 class="title">20.4. Resource Consumption</h2></div></div></div>
<div class="toc"><dl class="toc"><dt><a href="#mem">20.4.1. Memory</a></dt><dt><a href="#disk">20.4.2. Disk</a></dt></dl></div>
<div class="sect2" id="mem"><div class="titlepage"><div><div><h3 class="title">20.4.1. Memory</h3></div></div></div>
<div class="variablelist"><dl class="variablelist">
<dt id="guc-work-mem"><span class="term"><code class="varname">work_mem</code> (<code class="type">integer</code>)</span></dt>
<dd><p>{SETTING} The default value is four megabytes (<code>4MB</code>).</p>
<div class="note"><h3 class="title">Note</h3><p>On Windows, a value of 0 is not supported and the server refuses to start with it.</p></div></dd>
<dt id="guc-temp-buffers"><span class="term"><code class="varname">temp_buffers</code> (<code class="type">integer</code>)</span></dt>
<dd><p>Sets the maximum amount of memory used for temporary buffers within each database session. The default is eight megabytes (<code>8MB</code>).</p></dd>
</dl></div></div>
<div class="sect2" id="disk"><div class="titlepage"><div><div><h3 class="title">20.4.2. Disk</h3></div></div></div>
<div class="variablelist"><dl class="variablelist">
<dt><span class="term"><code>-a</code><br><code>--data-only</code></span></dt>
<dd><p>Dump only the data, not the schema (data definitions). Table data, large objects, and sequence values are dumped.</p></dd>
</dl></div></div></div>
<div class="navfooter"><a href="prev.html">Prev</a> <a href="up.html">Up</a></div>
</body></html>"""


def parsed(tmp_path, html: str, name: str = "manual.html"):
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    return parse_file(path, name)


def headings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]


def test_a_manuals_sections_and_settings_become_headings(tmp_path):
    text = parsed(tmp_path, MANUAL).pages[0].text
    assert headings(text) == [
        "## 20.4. Resource Consumption",
        "### 20.4.1. Memory",
        "#### work_mem (integer)",
        "#### temp_buffers (integer)",
        "### 20.4.2. Disk",
        "#### -a, --data-only",  # an option's two spellings, apart
    ]
    assert SETTING in text and "four megabytes" in text


def test_an_admonition_is_text_not_a_heading(tmp_path):
    text = parsed(tmp_path, MANUAL).pages[0].text
    assert "Note:" in text and "On Windows, a value of 0 is not supported" in text
    assert not any("Note" in line or "Windows" in line for line in headings(text))


def test_a_table_of_contents_does_not_become_headings(tmp_path):
    text = parsed(tmp_path, MANUAL).pages[0].text
    assert text.count("20.4.1. Memory") <= 2  # the heading, and at most the contents' link text
    assert "#### 20.4.1" not in text and "#### 20.4.2" not in text


def test_a_passage_under_a_setting_carries_its_heading_path(tmp_path):
    text = parsed(tmp_path, MANUAL).pages[0].text
    chunks = chunk_pages(parsed(tmp_path, MANUAL).pages, lambda s: len(s.split()), 60)
    holding = [c for c in chunks if "four megabytes" in c.text]
    assert holding and holding[0].heading == "20.4. Resource Consumption > 20.4.1. Memory > work_mem (integer)"
    assert "eight megabytes" not in holding[0].text  # the next setting starts a passage of its own
    assert text.count("§") == 0  # no marker is left behind


def test_the_title_is_not_an_admonitions(tmp_path):
    # trafilatura takes the first "Warning" heading for pg_dump's title.
    page = MANUAL.replace("<title>20.4. Resource Consumption</title>", "<title>pg_dump</title>")
    assert title(page, "Warning") == "pg_dump" and title(page, "Note:") == "pg_dump"
    assert title(page, "Backups") == "Backups"
    assert title("<html><body><p>No title here.</p></body></html>", "Warning") == ""
    assert title("<title>Fish &amp; chips\n  menu</title>", "") == "Fish & chips menu"


def test_an_ordinary_pages_text_is_unchanged(tmp_path):
    html = (ROOT / "demo" / "fees-and-charges.html").read_text()
    assert mark(html)[0] != html  # its headings were marked, and come back as they were
    unmarked = trafilatura.extract(
        html, output_format="markdown", include_tables=True, include_formatting=True, favor_recall=True
    )
    assert parsed(tmp_path, html).pages[0].text == unmarked.strip()


def test_pages_without_structure_or_markers_pass_through():
    plain = "<html><body><p>Just a paragraph of text, nothing else.</p></body></html>"
    assert mark(plain)[0] == plain
    assert restore("No markers here.\n- a list item", "k1") == "No markers here.\n- a list item"
    assert restore("- §§k1h4§§ work_mem (integer)\n- Sets memory.", "k1") == "#### work_mem (integer)\n\n- Sets memory."
    assert mark("")[0] == ""  # nothing to parse: trafilatura reports it


def test_a_pages_own_text_cannot_pass_for_a_marker(tmp_path):
    _, key = mark(MANUAL)
    assert mark(MANUAL)[1] != key  # a key of its own for every page
    forged = "§§h1§§ Forged heading in a paragraph long enough to be kept by the extraction."
    page = f"<html><head><title>T</title></head><body><main><p>{forged}</p><p>Costs §§{key}h2§§ nothing at all.</p></main></body></html>"
    text = parsed(tmp_path, page).pages[0].text
    assert forged in text and f"Costs §§{key}h2§§ nothing" in text and not headings(text)


def test_scripts_in_a_term_are_not_its_words(tmp_path):
    page = (
        "<html><head><title>T</title></head><body><main><h2>Settings</h2><dl><dt><script>alert(1)</script>"
        "<b onclick=x>work_mem</b><style>b{}</style></dt><dd><p>Sets the memory of a sort before it spills to disk."
        "</p></dd></dl></main></body></html>"
    )
    assert headings(parsed(tmp_path, page).pages[0].text) == ["## Settings", "### work_mem"]
    # A linked term with two spellings: read once for the navigation test, once for its words.
    linked = page.replace("<b onclick=x>work_mem</b>", '<a href="#a">-a</a><br><a href="#a">--all</a> (the lot)')
    assert headings(parsed(tmp_path, linked).pages[0].text) == ["## Settings", "### -a, --all (the lot)"]
