"""OCR measured on scans of documents whose text is known (issue #31).

    .venv/bin/python bench/ocr.py [--label NAME] [--dpi 200] [--split test] [--no-answers]

1. The demo corpus (demo/) as born-digital PDFs: the card handbook as it is,
   every other document's parsed text typeset into a PDF (fpdf2).
2. Each PDF scanned: every page rendered to a greyscale image at --dpi and
   the images rebuilt into a PDF without a text layer; and a degraded copy
   of it (slightly blurred, rotated 0.7 degrees, speckled), as a worn office
   scanner gives.
3. Words recovered: for every page, the share of the text layer's words
   (as a multiset) that OCR gives back from the scan, and the share of OCR's
   words that are the page's (precision); seconds per page.
4. Answers: `evaluate_answers` on bench/qa/demo.jsonl (its --split part)
   over the born-digital PDFs, and over the clean scans, each corpus in a
   fresh data folder of its own process, through the real answer path.

Writes bench/results/ocr-<label>.json and prints the tables.
"""

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.answers import machine  # noqa: E402
from bench.common import ROOT  # noqa: E402

DEMO = ROOT / "demo"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9€]+", text.lower())


def overlap(truth: list[str], read: list[str]) -> int:
    left = {}
    for word in read:
        left[word] = left.get(word, 0) + 1
    found = 0
    for word in truth:
        if left.get(word, 0):
            left[word] -= 1
            found += 1
    return found


def born_digital(folder: Path) -> list[Path]:
    """The demo corpus as text PDFs (the handbook as it is; the rest typeset)."""
    from fpdf import FPDF

    from ingestion.parsing import parse_file

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for source in sorted(DEMO.iterdir()):
        target = folder / f"{source.stem}.pdf"
        if source.suffix == ".pdf":
            target.write_bytes(source.read_bytes())
        else:
            text = "\n\n".join(page.text for page in parse_file(source, source.name).pages)
            pdf = FPDF()
            pdf.set_auto_page_break(auto=True, margin=15)
            pdf.add_font("DejaVu", fname="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
            for line in text.replace("\r", "").split("\n"):
                if pdf.page_no() == 0:
                    pdf.add_page()
                stripped = re.sub(r"^#+\s*|\*\*|`", "", line).strip()
                heading = line.startswith("#")
                pdf.set_font("DejaVu", size=14 if heading else 11)
                if stripped:
                    pdf.multi_cell(0, 7 if heading else 6, stripped)
                pdf.ln(2)
            pdf.output(str(target))
        made.append(target)
    return made


def scan(pdf: Path, target: Path, dpi: int, degrade: bool) -> Path:
    """A PDF of images of `pdf`'s pages (no text layer), worn when `degrade`."""
    import pypdfium2 as pdfium
    from PIL import ImageFilter

    document = pdfium.PdfDocument(str(pdf))
    images = []
    noise = random.Random(len(pdf.name))
    for index in range(len(document)):
        image = document[index].render(scale=dpi / 72, grayscale=True).to_pil()
        if degrade:
            image = image.filter(ImageFilter.GaussianBlur(0.8)).rotate(0.7, fillcolor=255, expand=False)
            pixels = image.load()
            for _ in range(image.width * image.height // 400):  # speckle: 0.25% of the pixels
                pixels[noise.randrange(image.width), noise.randrange(image.height)] = noise.choice((0, 255))
        images.append(image.convert("L"))
    document.close()
    images[0].save(target, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return target


def recovery(originals: list[Path], scans: list[Path]) -> dict:
    from ingestion.parsing import parse_file

    rows, total_truth, total_read, total_found, seconds, pages = [], 0, 0, 0, 0.0, 0
    for original, scanned in zip(originals, scans, strict=True):
        truth = parse_file(original, original.name).pages
        started = time.perf_counter()
        parsed = parse_file(scanned, scanned.name)
        elapsed = time.perf_counter() - started
        seconds += elapsed
        pages += len(parsed.pages)
        for page, read in zip(truth, parsed.pages, strict=True):
            t, r = words(page.text), words(read.text)
            found = overlap(t, r)
            total_truth, total_read, total_found = total_truth + len(t), total_read + len(r), total_found + found
        confidence = [p.confidence for p in parsed.ocr_pages]
        rows.append(
            {
                "document": original.name,
                "pages": len(parsed.pages),
                "ocr_pages": len(parsed.ocr_pages),
                "mean_confidence": round(sum(confidence) / max(len(confidence), 1), 1),
                "seconds": round(elapsed, 2),
            }
        )
    return {
        "words": total_truth,
        "recall": round(total_found / max(total_truth, 1), 4),
        "precision": round(total_found / max(total_read, 1), 4),
        "pages": pages,
        "seconds_per_page": round(seconds / max(pages, 1), 2),
        "documents": rows,
    }


def answers(folder: Path, data: Path, split: str, out: Path) -> None:
    """In a process of its own: ingest `folder`, run evaluate_answers, write `out`."""
    import dataclasses

    from bench.common import setup_django

    setup_django(str(data))
    from django.core.management import call_command

    from generation import evaluation, services

    call_command("ingest", str(folder), "--inline", stdout=sys.stderr)
    with open(ROOT / "bench" / "qa" / "demo.jsonl", encoding="utf-8") as handle:
        questions = evaluation.in_split(evaluation.parse_questions(handle), split)
    # The documents are PDFs here: a question's gold file keeps its stem.
    questions = [
        dataclasses.replace(q, document=f"{Path(q.document).stem}.pdf" if q.document else "") for q in questions
    ]
    services.ask("What is this collection about?")  # warm: the models load once
    report = services.evaluate_answers(questions)
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="now")
    parser.add_argument("--dpi", type=int, default=200, help="The scanner's resolution.")
    parser.add_argument("--split", choices=["dev", "test", "all"], default="test")
    parser.add_argument("--no-answers", action="store_true", help="Words recovered only.")
    parser.add_argument("--answers-of", nargs=3, metavar=("FOLDER", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.answers_of:
        folder, data, out = map(Path, args.answers_of)
        answers(folder, data, args.split, out)
        return
    work = Path(tempfile.mkdtemp(prefix="rag-ocr-bench-"))
    originals = born_digital(work / "text")
    (work / "scanned").mkdir()
    (work / "worn").mkdir()
    scans = [scan(p, work / "scanned" / p.name, args.dpi, degrade=False) for p in originals]
    worn = [scan(p, work / "worn" / p.name, args.dpi, degrade=True) for p in originals]
    report = {
        "label": args.label,
        "machine": machine(),
        "dpi": args.dpi,
        "tesseract": subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.split("\n")[0],
        "clean": recovery(originals, scans),
        "worn": recovery(originals, worn),
    }
    if not args.no_answers:
        report["answers"], rows = {}, {}
        for name in ("text", "scanned"):
            out = work / f"answers-{name}.json"
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--split",
                    args.split,
                    "--answers-of",
                    str(work / name),
                    str(work / f"data-{name}"),
                    str(out),
                ],
                check=True,
            )
            report["answers"][name] = json.loads(out.read_text())["summary"]
            rows[name] = {row["id"]: row for row in json.loads(out.read_text())["questions"]}
        # The questions whose answer holds the fact on one corpus and not the other, and why.
        report["answers"]["differences"] = [
            {
                "id": qid,
                "question": row["question"],
                "text_layer": {"holds_fact": row.get("holds_fact"), "kind": row["kind"], "answer": row["answer"][:300]},
                "scans": {
                    "holds_fact": rows["scanned"][qid].get("holds_fact"),
                    "kind": rows["scanned"][qid]["kind"],
                    "answer": rows["scanned"][qid]["answer"][:300],
                },
            }
            for qid, row in rows["text"].items()
            if qid in rows["scanned"]
            and (row.get("holds_fact"), row["kind"])
            != (rows["scanned"][qid].get("holds_fact"), rows["scanned"][qid]["kind"])
        ]
    target = ROOT / "bench" / "results" / f"ocr-{args.label}.json"
    target.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"## OCR on scans of the demo corpus at {args.dpi} dpi ({report['tesseract']})\n")
    print("| scans | pages | words | recall | precision | s/page |\n| --- | --- | --- | --- | --- | --- |")
    for kind in ("clean", "worn"):
        r = report[kind]
        print(
            f"| {kind} | {r['pages']} | {r['words']} | {r['recall']:.3f} | {r['precision']:.3f} | {r['seconds_per_page']} |"
        )
    if "answers" in report:
        keys = [k for k in sorted(report["answers"]["text"]) if not isinstance(report["answers"]["text"][k], dict)]
        print("\n| measure | text-layer originals | scans (OCR) |\n| --- | --- | --- |")
        for key in keys:
            print(f"| {key} | {report['answers']['text'][key]} | {report['answers']['scanned'].get(key)} |")
        print(f"\n{len(report['answers']['differences'])} questions answered differently (the result file lists them).")


if __name__ == "__main__":
    main()
