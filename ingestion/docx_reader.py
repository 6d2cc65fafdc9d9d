"""Word documents read as a stream. Pure: no Django.

python-docx builds the whole `document.xml` as one tree before a paragraph can
be read: a 291 KB file of 190 MB of empty paragraphs took a worker to 5 GB.
Here lxml's iterparse reads the parts in order and each paragraph and table is
dropped as soon as it has been turned into text, so memory follows the largest
paragraph or table, not the file. Every part is read through a counter of the
bytes it really unpacks to (a zip's own size fields can lie), which stops at
MAX_UNZIPPED_BYTES. The text is what python-docx gave: headings as Markdown
headings, tables as Markdown tables, in body order; text boxes and deleted
text are not read.
"""

from __future__ import annotations

import logging
import posixpath
import zipfile
from pathlib import Path

from ingestion.limits import Guard
from ingestion.tables import cell_text, markdown_table

log = logging.getLogger(__name__)

# A DOCX is a zip: reading stops once the parts it reads unpack past this (a zip bomb).
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"
OFFICE_DOCUMENT = "/officeDocument"  # relationship types end so (transitional and strict)
CORE_PROPERTIES = "/metadata/core-properties"
STYLES = "/styles"
# Inside a run: what python-docx's run.text turns into text.
RUN_TEXT = {W + "tab": "\t", W + "ptab": "\t", W + "br": "\n", W + "cr": "\n", W + "noBreakHyphen": "-"}
SKIPPED = {W + "txbxContent", W + "del", W + "moveFrom"}  # text boxes (and their VML copies), deleted text
P, R, T, PSTYLE, VAL, TBL, TR, TC = (W + name for name in ("p", "r", "t", "pStyle", "val", "tbl", "tr", "tc"))
READ = sorted({P, R, T, PSTYLE, TBL, TR, TC} | SKIPPED | set(RUN_TEXT))
DROPPED = frozenset({P, R, TBL, TR, TC})  # read once they end: cleared, with what came before them


class DocxError(Exception):
    """Why the document cannot be read; parsing turns it into a ParseError for the user."""


class _Counted:
    """A part's bytes as they unpack, counted against the archive's budget."""

    def __init__(self, stream, budget: list[int]):
        self.stream, self.budget = stream, budget

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size if size and size > 0 else 1024 * 1024)
        self.budget[0] -= len(data)
        if self.budget[0] < 0:
            raise DocxError(
                f"The DOCX expands to more than {MAX_UNZIPPED_BYTES // (1024 * 1024)} MB; "
                "it may be a zip bomb and was not read further."
            )
        return data


def read_docx(path: Path, guard: Guard) -> tuple[list[str], str]:
    """The document's blocks (paragraphs, headings, tables) as text, and its title."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DocxError(
            "The file is not a valid Word document (.docx is a zip archive; this one is damaged)."
        ) from None
    with archive:
        if sum(info.file_size for info in archive.infolist()) > MAX_UNZIPPED_BYTES:  # what it says, checked first
            raise DocxError(
                f"The DOCX would expand to more than {MAX_UNZIPPED_BYTES // (1024 * 1024)} MB; "
                "it may be a zip bomb and was not opened."
            )
        budget = [MAX_UNZIPPED_BYTES]  # what it really unpacks to, counted as it is read
        try:
            package = _relationships(archive, "_rels/.rels", budget)
            main = package.get(OFFICE_DOCUMENT)
            if main is None or main not in archive.NameToInfo:
                raise DocxError("The Word document could not be read: it is damaged or not a Word document.")
            parts = _relationships(archive, _rels_of(main), budget)
            styles = _style_names(archive, parts.get(STYLES), budget)
            blocks = _blocks(archive, main, styles, budget, guard)
            title = _title(archive, package.get(CORE_PROPERTIES), budget)
        except (zipfile.BadZipFile, EOFError) as exc:  # a bad CRC, a truncated member
            log.info("%s: damaged zip member: %r", path.name, exc)
            raise DocxError("The Word document is damaged (a part of it does not unpack).") from None
        except _xml_errors() as exc:
            log.info("%s: XML error: %r", path.name, exc)  # the detail, for the operator
            if "memory" in str(exc).lower():
                raise MemoryError(str(exc)) from None
            raise DocxError("The Word document could not be read: it is damaged or not a Word document.") from None
    return blocks, title


def _xml_errors():
    from lxml import etree

    return (etree.XMLSyntaxError,)


def _iterparse(archive: zipfile.ZipFile, name: str, budget: list[int], events=("end",), tag=None):
    from lxml import etree

    return etree.iterparse(
        _Counted(archive.open(name), budget),
        events=events,
        tag=tag,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
    )


def _rels_of(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{name}.rels")


def _relationships(archive: zipfile.ZipFile, rels: str, budget: list[int]) -> dict[str, str]:
    """A part's relationships as {type suffix: target part}, for the types read here."""
    if rels not in archive.NameToInfo:
        return {}
    base = posixpath.dirname(posixpath.dirname(rels))
    found = {}
    for _, element in _iterparse(archive, rels, budget, tag=REL + "Relationship"):
        kind, target = element.get("Type", ""), element.get("Target", "")
        if element.get("TargetMode") != "External" and target:
            for suffix in (OFFICE_DOCUMENT, CORE_PROPERTIES, STYLES):
                if kind.endswith(suffix):
                    resolved = target.lstrip("/") if target.startswith("/") else posixpath.join(base, target)
                    found.setdefault(suffix, posixpath.normpath(resolved))
        element.clear()
    return found


def _style_names(archive: zipfile.ZipFile, part: str | None, budget: list[int]) -> dict[str, str]:
    """Paragraph style names by id ("Heading1" -> "heading 1"), read once."""
    if not part or part not in archive.NameToInfo:
        return {}
    names = {}
    for _, style in _iterparse(archive, part, budget, tag=W + "style"):
        name = style.find(W + "name")
        if style.get(W + "styleId") and name is not None:
            names[style.get(W + "styleId")] = (name.get(W + "val") or "").strip()
        style.clear()
    return names


def _title(archive: zipfile.ZipFile, part: str | None, budget: list[int]) -> str:
    if not part or part not in archive.NameToInfo:
        return ""
    for _, element in _iterparse(archive, part, budget, tag=DC_TITLE):
        return (element.text or "").strip()
    return ""


def heading_level(style: str) -> int:
    """Markdown heading level of a paragraph style name (0: not a heading);
    Word stores built-in names in lower case ("heading 2"), others as typed."""
    style = style.lower()
    if style == "title":
        return 1
    if style.startswith("heading "):
        try:
            return max(1, min(6, int(style.split()[1])))
        except (IndexError, ValueError):
            return 0
    return 0


class _Body:
    """The state of one pass over document.xml: the open paragraph, tables and cells."""

    def __init__(self, styles: dict[str, str], guard: Guard):
        self.styles, self.guard = styles, guard
        self.blocks: list[str] = []
        self.skipping = 0  # inside a text box or deleted text
        self.text: list[str] = []  # the open paragraph's pieces
        self.text_chars = 0
        self.style = ""
        self.tables: list[list[list[str]]] = []  # open tables (nested ones inside cells), rows of cells
        self.cells: list[list[str]] = []  # open cells' paragraphs

    def start(self, tag: str) -> None:
        if tag == P or tag == R or tag == T:  # the hot path: nothing to do
            return
        if tag in SKIPPED:
            self.skipping += 1
        elif tag == TBL:
            self.tables.append([])
        elif tag == TR and self.tables:
            self.tables[-1].append([])
        elif tag == TC:
            self.cells.append([])

    def end(self, tag: str, element) -> None:
        if tag in SKIPPED:
            self.skipping -= 1
        elif self.skipping or tag == R:
            pass
        elif tag == P:
            self._paragraph()
        elif tag == T:
            self._add(element.text or "")
        elif tag in RUN_TEXT:
            self._add(RUN_TEXT[tag])
        elif tag == PSTYLE:
            self.style = self.styles.get(element.get(VAL) or "", "")
        elif tag == TC and self.cells:
            cell = cell_text("\n".join(self.cells.pop()))
            if self.tables and self.tables[-1]:
                self.tables[-1][-1].append(cell)
        elif tag == TR:
            self.guard.step()
        elif tag == TBL and self.tables:
            self._table(self.tables.pop())

    def _add(self, piece: str) -> None:
        self.text.append(piece)
        self.text_chars += len(piece)
        if self.guard.limits.max_text_chars is not None and self.text_chars > self.guard.limits.max_text_chars:
            self.guard.add_text(self.text_chars)  # one paragraph alone is over the limit: stop inside it

    def _paragraph(self) -> None:
        text, style = "".join(self.text), self.style
        self.text, self.text_chars, self.style = [], 0, ""
        if self.cells:  # a paragraph of a table cell
            self.cells[-1].append(text)
            return
        text = text.strip()
        if not text:  # an empty paragraph counts as one character (its break): millions of them are a bomb
            self.guard.add_text(1)
            return
        level = heading_level(style)
        self.blocks.append(f"{'#' * level} {' '.join(text.split())}" if level else text)
        self.guard.add_text(len(self.blocks[-1]))

    def _table(self, rows: list[list[str]]) -> None:
        if self.cells:  # a table nested in a cell: its text joins the cell's
            self.cells[-1].extend(" ".join(row) for row in rows)
            return
        if rows and any(rows):
            self.blocks.append(markdown_table([row or [""] for row in rows]))
            self.guard.add_text(len(self.blocks[-1]))


def _blocks(archive: zipfile.ZipFile, part: str, styles: dict[str, str], budget: list[int], guard: Guard) -> list[str]:
    body = _Body(styles, guard)
    # Only the elements read here reach Python (formatting, the bulk of a
    # real document's elements, is filtered out by lxml and cleared with its run).
    for event, element in _iterparse(archive, part, budget, events=("start", "end"), tag=READ):
        tag = element.tag
        if event == "start":
            body.start(tag)
            continue
        body.end(tag, element)
        if tag in DROPPED:  # read: drop it and what came before it, so the tree never grows
            element.clear()
            previous = element.getprevious()
            if previous is not None:
                parent = element.getparent()
                while element.getprevious() is not None:
                    del parent[0]
    return body.blocks
