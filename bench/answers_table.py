"""The answer measures of result files side by side, as the Markdown table
that opens docs/BENCHMARKS.md: the test part of each set (or the whole set).

    .venv/bin/python bench/answers_table.py [--part test|all] bench/results/answers-*-s14-before.json ...
"""

import argparse
import json
import sys
from pathlib import Path

MEASURES = [
    ("holds_fact", "answer holds the fact (every part)"),
    ("wrong_cited", "wrong answer shown with a citation"),
    ("false_abstention", "answerable answered 'not in the documents'"),
    ("abstained", "unanswerable answered 'not in the documents'"),
    ("parts_right", "several parts: every part right"),
    ("shown_as_list", "list or comparison shown as a list or table"),
    ("latency_p50", "latency p50 (s)"),
]


def column(path: Path, part: str) -> tuple[str, dict]:
    report = json.loads(path.read_text())
    summary = report["by_split"]["test"] if part == "test" else report["summary"]
    return f"{report.get('set', report['corpus'])} {report['label']}", summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["test", "all"], default="test")
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    columns = [column(path, args.part) for path in args.results]
    print("| measure | " + " | ".join(name for name, _ in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    print("| questions | " + " | ".join(str(s["questions"]) for _, s in columns) + " |")
    for key, label in MEASURES:
        cells = ["-" if s.get(key) is None else str(s[key]) for _, s in columns]
        if set(cells) != {"-"}:
            print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
