"""Real PDFs for tests, written with fpdf2 (a text layer per page)."""

from pathlib import Path


def make_pdf(path: Path, pages: list[str], title: str = "") -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        for paragraph in text.strip().split("\n\n"):
            pdf.multi_cell(0, 6, " ".join(paragraph.split()))
            pdf.ln(3)
    pdf.output(str(path))
    return path
