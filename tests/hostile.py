"""A corpus of hostile files, written on demand (nothing binary is committed)."""

import zipfile
from pathlib import Path

from tests.pdfs import make_pdf

GOOD_PAGES = ["The Gold card has an annual fee of 95 euros.", "The Platinum card includes airport lounge access."]


def build(folder: Path) -> dict[str, str]:
    """Write the files; return {file name: phrase its failure reason must contain}.
    Files mapped to "" are good ones that must index."""
    folder.mkdir(parents=True, exist_ok=True)
    good_pdf = make_pdf(folder / "handbook.pdf", GOOD_PAGES, title="Handbook")
    data = good_pdf.read_bytes()
    expected = {"handbook.pdf": ""}

    (folder / "empty.txt").write_bytes(b"")
    expected["empty.txt"] = "empty"

    (folder / "truncated.pdf").write_bytes(data[: len(data) // 3])
    expected["truncated.pdf"] = "PDF"

    xref = data.index(b"xref")
    (folder / "broken-xref.pdf").write_bytes(data[:xref] + b"xref\nGARBAGE GARBAGE\n" + b"\x00" * 64)
    expected["broken-xref.pdf"] = ""  # PDFium rebuilds a broken xref table: it must index (or fail readably)

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(good_pdf).pages[0])
    writer.encrypt("secret")
    with (folder / "locked.pdf").open("wb") as out:
        writer.write(out)
    expected["locked.pdf"] = "encrypted"

    from fpdf import FPDF

    scan = FPDF()
    scan.add_page()
    scan.rect(20, 20, 100, 60, style="F")
    scan.output(str(folder / "scan.pdf"))
    expected["scan.pdf"] = "no text layer"

    from PIL import Image

    Image.new("L", (400, 300), 255).save(folder / "whole.png")
    (folder / "truncated.png").write_bytes((folder / "whole.png").read_bytes()[:60])
    (folder / "whole.png").unlink()
    expected["truncated.png"] = "image could not be read"
    Image.new("1", (20_000, 20_000)).save(folder / "pixel-bomb.png")  # 400 megapixels in a few kilobytes
    expected["pixel-bomb.png"] = "too many pixels"

    with zipfile.ZipFile(folder / "bomb.docx", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(210):
                member.write(b"\0" * (1024 * 1024))
    expected["bomb.docx"] = "zip bomb"

    (folder / "program.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00binary\x00\x00")
    expected["program.txt"] = "looks binary"

    (folder / "legacy.txt").write_bytes("Le café coûte 3 € à Zürich.".encode("cp1252"))
    expected["legacy.txt"] = ""  # non-UTF-8 text is fine

    (folder / "slides.pptx").write_bytes(b"PK\x03\x04whatever")
    expected["slides.pptx"] = "Unsupported file type .pptx"
    return expected
