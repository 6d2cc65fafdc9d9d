"""Tables as Markdown, the one form every parser gives them (the chunker keeps
a table whole or repeats its header row). Pure: no Django."""


def cell_text(text: str | None) -> str:
    """A cell's text on one line, its pipes escaped so they do not split the cell."""
    return " ".join((text or "").split()).replace("|", "\\|")


def markdown_table(rows: list[list[str]]) -> str:
    """Rows of cell texts as a Markdown table, the first row its header; short rows are padded."""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)
