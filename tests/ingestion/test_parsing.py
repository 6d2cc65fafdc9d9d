"""ingestion/parsing.py: real files in, pages or a readable ParseError out."""

from pathlib import Path

import pytest

from ingestion.parsing import Page, ParseError, is_supported, parse_file
from tests.pdfs import make_pdf

PAGES = [
    "Alpha page one talks about cats.\n\nA second paragraph on the first page.",
    "Beta page two talks about dogs.",
    "Gamma page three talks about birds.",
]


@pytest.fixture
def real_pdf(tmp_path) -> Path:
    return make_pdf(tmp_path / "real.pdf", PAGES, title="Animal Handbook")


def write(tmp_path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def parse_error(path, filename) -> str:
    with pytest.raises(ParseError) as info:
        parse_file(path, filename)
    message = str(info.value)
    assert message and message[0].isupper()  # a sentence a user can read
    return message


# -- PDF ------------------------------------------------------------------


def test_it_numbers_pdf_pages_from_one_with_their_text(real_pdf):
    parsed = parse_file(real_pdf, "real.pdf")

    assert parsed.kind == "pdf"
    assert [page.number for page in parsed.pages] == [1, 2, 3]
    assert "Alpha page one talks about cats." in parsed.pages[0].text
    assert "second paragraph" in parsed.pages[0].text
    assert "dogs" in parsed.pages[1].text and "cats" not in parsed.pages[1].text
    assert "Gamma page three talks about birds." in parsed.pages[2].text


def test_it_reads_the_pdf_metadata_title(real_pdf):
    assert parse_file(real_pdf, "real.pdf").title == "Animal Handbook"


def test_it_leaves_the_title_empty_for_a_pdf_without_one(tmp_path):
    path = make_pdf(tmp_path / "untitled.pdf", ["Just some text."])
    assert parse_file(path, "untitled.pdf").title == ""


def test_it_picks_the_format_from_the_user_filename_not_the_stored_path(real_pdf, tmp_path):
    stored = tmp_path / "upload-7f3a.bin"
    stored.write_bytes(real_pdf.read_bytes())
    assert parse_file(stored, "Report.PDF").kind == "pdf"


def test_it_rejects_a_truncated_pdf(real_pdf, tmp_path):
    data = real_pdf.read_bytes()
    path = write(tmp_path, "cut.pdf", data[: int(len(data) * 0.4)])
    assert "damaged" in parse_error(path, "cut.pdf")


def test_it_rejects_garbage_named_pdf_without_a_pdf_header(tmp_path):
    path = write(tmp_path, "fake.pdf", b"GIF89a this is not a PDF at all \x00\x01\x02" * 10)
    assert "not a PDF" in parse_error(path, "fake.pdf")


@pytest.mark.parametrize("fraction", [0.3, 0.4, 0.5, 0.6, 0.7])
def test_it_parses_or_raises_parse_error_for_a_pdf_with_a_corrupted_body(real_pdf, tmp_path, fraction):
    # PDFium repairs what it can: depending on where the junk lands it
    # recovers some pages or fails; either is fine, another exception is not.
    data = bytearray(real_pdf.read_bytes())
    middle = int(len(data) * fraction)
    data[middle : middle + 200] = (b"\x13junk" * 40)[:200]
    path = write(tmp_path, "corrupt.pdf", bytes(data))
    try:
        parsed = parse_file(path, "corrupt.pdf")
    except ParseError as exc:
        assert str(exc)
    else:
        assert parsed.kind == "pdf"
        assert [page.number for page in parsed.pages] == list(range(1, len(parsed.pages) + 1))
        assert any(page.text.strip() for page in parsed.pages)


def test_it_raises_parse_error_for_a_pdf_with_a_corrupted_stream_filter_name(real_pdf, tmp_path):
    data = real_pdf.read_bytes()
    assert b"/FlateDecode" in data
    path = write(tmp_path, "filter.pdf", data.replace(b"/FlateDecode", b"/FlateDecodX"))
    message = parse_error(path, "filter.pdf")  # undecodable page streams leave no readable text
    assert "damaged" in message or "no text layer" in message


def test_it_rejects_a_password_protected_pdf(real_pdf, tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(real_pdf).pages[0])
    writer.encrypt("secret")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as out:
        writer.write(out)
    assert "encrypted" in parse_error(path, "locked.pdf")


def test_it_reads_a_pdf_encrypted_only_with_an_owner_password(real_pdf, tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(real_pdf).pages[0])
    writer.encrypt(user_password="", owner_password="secret")
    path = tmp_path / "owner.pdf"
    with path.open("wb") as out:
        writer.write(out)
    parsed = parse_file(path, "owner.pdf")
    assert [page.number for page in parsed.pages] == [1]
    assert "cats" in parsed.pages[0].text


def test_it_rejects_an_image_only_pdf_without_a_text_layer(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    assert "no text layer" in parse_error(path, "scan.pdf")


# -- Markdown and plain text ------------------------------------------------


def test_it_takes_the_markdown_title_from_the_first_h1(tmp_path):
    path = write(
        tmp_path, "guide.md", b"Intro line\n\n## Not this one\n\n#   Install Guide  \n\n# Later title\n\nBody.\n"
    )
    parsed = parse_file(path, "guide.md")
    assert parsed.kind == "markdown"
    assert parsed.title == "Install Guide"
    assert parsed.pages == [
        Page(None, "Intro line\n\n## Not this one\n\n#   Install Guide  \n\n# Later title\n\nBody.\n")
    ]


def test_it_leaves_the_title_empty_for_markdown_without_an_h1(tmp_path):
    path = write(tmp_path, "notes.markdown", b"## Only a subheading\n\n#hashtag is not a heading\n")
    assert parse_file(path, "notes.markdown").title == ""


def test_it_gives_plain_text_one_unnumbered_page_and_no_title(tmp_path):
    path = write(tmp_path, "notes.txt", b"# not a title in plain text\nhello\n")
    parsed = parse_file(path, "notes.txt")
    assert parsed.kind == "text"
    assert parsed.title == ""
    assert parsed.pages == [Page(None, "# not a title in plain text\nhello\n")]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("café naïve – “quoted”\n".encode("cp1252"), id="cp1252"),
        pytest.param("café naïve – “quoted”\n".encode(), id="utf-8"),
        pytest.param(b"\xef\xbb\xbf" + "café naïve – “quoted”\n".encode(), id="utf-8-bom"),
        pytest.param("café naïve – “quoted”\n".encode("utf-16"), id="utf-16-bom"),
        pytest.param(b"\xff\xfe" + "café naïve – “quoted”\n".encode("utf-16-le"), id="utf-16-le-bom"),
        pytest.param(b"\xfe\xff" + "café naïve – “quoted”\n".encode("utf-16-be"), id="utf-16-be-bom"),
    ],
)
def test_it_decodes_text_encodings(tmp_path, data):
    path = write(tmp_path, "text.txt", data)
    assert parse_file(path, "text.txt").pages[0].text == "café naïve – “quoted”\n"


def test_it_falls_back_to_latin1_for_bytes_undefined_in_cp1252(tmp_path):
    path = write(tmp_path, "odd.txt", b"caf\xe9 \x81 end")
    assert parse_file(path, "odd.txt").pages[0].text == "café \x81 end"


def test_it_normalises_crlf_and_lone_cr_line_endings(tmp_path):
    path = write(tmp_path, "dos.md", b"# Title\r\n\r\nline one\r\nline two\rline three\r\n")
    parsed = parse_file(path, "dos.md")
    assert parsed.pages[0].text == "# Title\n\nline one\nline two\nline three\n"
    assert parsed.title == "Title"


def test_it_normalises_crlf_in_utf16_text(tmp_path):
    path = write(tmp_path, "dos.txt", "one\r\ntwo\r\n".encode("utf-16"))
    assert parse_file(path, "dos.txt").pages[0].text == "one\ntwo\n"


# -- rejected inputs ---------------------------------------------------------


@pytest.mark.parametrize("name", ["empty.pdf", "empty.md", "empty.txt"])
def test_it_rejects_an_empty_file(tmp_path, name):
    path = write(tmp_path, name, b"")
    assert "empty (0 bytes)" in parse_error(path, name)


def test_it_rejects_a_whitespace_only_text_file(tmp_path):
    path = write(tmp_path, "blank.txt", b" \r\n\t\n  ")
    assert "no text" in parse_error(path, "blank.txt")


@pytest.mark.parametrize(
    ("name", "shown"),
    [("setup.exe", ".exe"), ("README", "(no extension)"), ("archive.tar.gz", ".gz"), ("slides.pptx", ".pptx")],
)
def test_it_rejects_unsupported_file_types_naming_the_extension(tmp_path, name, shown):
    path = write(tmp_path, "stored", b"MZ\x90\x00 some content")
    message = parse_error(path, name)
    assert f"Unsupported file type {shown}" in message
    assert "PDF, Word (.docx), HTML, Markdown" in message


def test_it_rejects_a_binary_file_renamed_txt(tmp_path):
    path = write(tmp_path, "program.txt", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00binary\x00\x00data")
    assert "looks binary" in parse_error(path, "program.txt")


def test_it_rejects_a_binary_file_renamed_md(tmp_path):
    path = write(tmp_path, "image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "looks binary" in parse_error(path, "image.md")


@pytest.mark.parametrize(
    ("name", "supported"),
    [
        ("a.pdf", True),
        ("A.PDF", True),
        ("b.md", True),
        ("b.markdown", True),
        ("c.txt", True),
        ("c.text", True),
        ("d.exe", False),
        ("README", False),
        ("e.docx", True),
        ("f.html", True),
        ("g.HTM", True),
        ("h.pptx", False),
        (".pdf", False),
    ],
)
def test_it_reports_supported_filenames(name, supported):
    assert is_supported(name) is supported


def test_it_decodes_cyrillic_windows_1251(tmp_path):
    text = "Привет, как дела? Это тестовый документ о банковских картах.\n"
    path = write(tmp_path, "ru.txt", text.encode("cp1251"))
    assert parse_file(path, "ru.txt").pages[0].text == text


def make_docx(path, *, table=True):
    import docx

    document = docx.Document()
    document.core_properties.title = "Card guide"
    document.add_heading("Fees", 1)
    document.add_paragraph("The Gold card has an annual fee of 95 euros.")
    if table:
        grid = document.add_table(rows=3, cols=2)
        for r, (a, b) in enumerate([("Card", "Fee"), ("Silver", "0"), ("Gold | VIP", "95")]):
            grid.cell(r, 0).text, grid.cell(r, 1).text = a, b
    document.add_heading("Insurance", 2)
    document.add_paragraph("Platinum includes lounge access.")
    document.save(str(path))
    return path


def test_it_reads_a_docx_with_headings_and_tables_in_order(tmp_path):
    parsed = parse_file(make_docx(tmp_path / "guide.docx"), "guide.docx")
    assert parsed.kind == "docx" and parsed.title == "Card guide"
    assert parsed.pages[0].text == (
        "# Fees\n\nThe Gold card has an annual fee of 95 euros.\n\n"
        "| Card | Fee |\n|---|---|\n| Silver | 0 |\n| Gold \\| VIP | 95 |\n\n"
        "## Insurance\n\nPlatinum includes lounge access."
    )


def test_it_refuses_a_docx_zip_bomb(tmp_path):
    import zipfile

    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(210):
                member.write(block)
    assert path.stat().st_size < 1024 * 1024  # small on disk
    assert "zip bomb" in parse_error(path, "bomb.docx")


def test_it_rejects_a_damaged_docx(tmp_path):
    path = write(tmp_path, "broken.docx", b"PK\x03\x04 not really a zip")
    assert "not a valid Word document" in parse_error(path, "broken.docx")


def test_it_rejects_a_zip_that_is_not_a_word_document(tmp_path):
    import zipfile

    path = tmp_path / "other.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    message = parse_error(path, "other.docx")
    assert "could not be read" in message and "Error" not in message  # no exception class for the user


HTML_PAGE = """<html><head><title>Card fees</title><meta charset="utf-8"></head><body>
<nav><a href="/">Home</a> | <a href="/products">Products</a> | <a href="/login">Login</a></nav>
<main><article><h1>Card fees</h1>
<p>The Gold card has an annual fee of 95 euros, which is waived in the first year for every new customer.</p>
<h2>Comparison</h2><table><tr><th>Card</th><th>Fee</th></tr><tr><td>Silver</td><td>0</td></tr><tr><td>Gold</td><td>95</td></tr></table>
<p>The Platinum card includes worldwide travel insurance and airport lounge access for the card holder.</p>
</article></main><footer>Copyright 2026 Northwind Bank. Privacy policy. Cookie settings.</footer></body></html>"""


def test_it_extracts_the_main_content_of_an_html_page(tmp_path):
    path = write(tmp_path, "fees.html", HTML_PAGE.encode())
    parsed = parse_file(path, "fees.html")
    text = parsed.pages[0].text
    assert parsed.kind == "html" and parsed.title == "Card fees"
    assert "# Card fees" in text and "## Comparison" in text
    assert "annual fee of 95 euros" in text and "| Gold | 95 |" in text
    assert "Products" not in text and "Cookie settings" not in text


def test_html_identifiers_keep_their_underscores(tmp_path):
    page = b"<html><body><main><p>Raise max_connections and set wal_log_hints to on before you restart the server.</p></main></body></html>"
    text = parse_file(write(tmp_path, "config.html", page), "config.html").pages[0].text
    assert "max_connections" in text and "wal_log_hints" in text and "\\_" not in text


def test_it_rejects_an_html_page_without_text(tmp_path):
    path = write(
        tmp_path, "empty.html", b"<html><head><script>var x = 1;</script></head><body><img src=a.png></body></html>"
    )
    assert "No readable main text" in parse_error(path, "empty.html")


def make_table_pdf(path, rows):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 6, "Annual fees by card. The table below lists every card.")
    pdf.ln(3)
    with pdf.table() as table:
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(value)
    pdf.ln(3)
    pdf.multi_cell(0, 6, "Fees are charged on the card anniversary.")
    pdf.add_page()
    pdf.multi_cell(0, 6, "A page of plain text.")
    pdf.output(str(path))
    return path


def test_it_keeps_a_pdf_table_as_a_table_in_its_place(tmp_path):
    rows = [("Card", "Annual fee", "Interest"), ("Silver", "0 euros", "22.9%"), ("Gold", "95 euros", "19.9%")]
    parsed = parse_file(make_table_pdf(tmp_path / "fees.pdf", rows), "fees.pdf")
    assert parsed.pages[0].text == (
        "Annual fees by card. The table below lists every card.\n\n"
        "| Card | Annual fee | Interest |\n|---|---|---|\n| Silver | 0 euros | 22.9% |\n| Gold | 95 euros | 19.9% |\n\n"
        "Fees are charged on the card anniversary."
    )
    assert parsed.pages[1].text.strip() == "A page of plain text."


def test_a_long_pdf_table_is_split_with_its_header_repeated(tmp_path):
    from ingestion.chunking import chunk_pages

    rows = [("Card", "Annual fee", "Interest")] + [(f"Card {i}", f"{i * 10} euros", f"{i}.5%") for i in range(25)]
    parsed = parse_file(make_table_pdf(tmp_path / "long.pdf", rows), "long.pdf")
    chunks = chunk_pages(parsed.pages[:1], lambda text: len(text.split()), max_tokens=40)
    pieces = [c for c in chunks if "euros" in c.text]
    assert len(pieces) > 2
    assert all(p.text.startswith("| Card | Annual fee | Interest |\n|---|---|---|\n") for p in pieces)
