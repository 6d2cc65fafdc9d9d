"""Parsing in a child process whose memory is capped. Pure: no Django.

One hostile file must never take a worker's memory: `parse_isolated` runs the
parsers (ingestion/parsing.py) in a fresh child process,
`python -m ingestion.isolation`, whose address space is capped (RLIMIT_AS at
RAG_PARSE_MEMORY_MB), and the child's exit gives back everything it used. The
parent waits on it through the document's Guard: the claim's heartbeat about
once a second, the time limit, a cancel (each of which kills the child). What
went wrong comes back as the exceptions parse_file raises in process
(ParseError, LimitExceeded, FileNotFoundError), so callers cannot tell the
difference except by the memory a bad file could not take.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from ingestion.limits import Guard, LimitExceeded, Limits
from ingestion.ocr import OcrOptions
from ingestion.parsing import OcrPage, Page, ParsedDocument, ParseError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
# Signals a process dies of when an allocation fails in C code (or the kernel's OOM killer takes it).
OUT_OF_MEMORY_SIGNALS = {signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS}
OUT_OF_MEMORY_MARKS = ("MemoryError", "bad_alloc", "Cannot allocate memory", "out of memory")


class ReaderCrashed(RuntimeError):
    """The child stopped without an answer for no reason a user can act on (logged as an internal error)."""


def too_much_memory(memory_mb: int) -> str:
    return (
        f"Reading the document needed more than the {memory_mb:,} MB of memory one document may use "
        "(RAG_PARSE_MEMORY_MB): it may be built to exhaust memory; otherwise split it into smaller documents."
    )


def unreadable(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return (
        f"The file could not be read: it is damaged, or not the kind of file its name says ({suffix}). "
        "Open it and save it again, or export it to PDF, and upload that."
    )


def parse_isolated(
    path: str | Path,
    filename: str,
    guard: Guard,
    *,
    memory_mb: int,
    options: OcrOptions | None = None,
    searchable: str | Path | None = None,
) -> ParsedDocument:
    """parse_file(path, filename, options=…, searchable=…) in a child capped at
    `memory_mb` (Tesseract, its child, included), under `guard`'s limits and heartbeat."""
    request = json.dumps(
        {
            "path": str(path),
            "filename": filename,
            "limits": asdict(guard.limits),
            "memory_mb": memory_mb,
            "ocr": asdict(options or OcrOptions()),
            "searchable": str(searchable) if searchable else None,
        }
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        # One thread and few malloc arenas: the cap is on address space, which idle thread pools reserve.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "ingestion.isolation"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        out, err = _wait(child, request.encode(), guard)
    finally:
        if child.poll() is None:  # a limit, a cancel, the task's own time limit: the child goes with it
            child.kill()
            child.wait()
    return _answer(child.returncode, out, err.decode(errors="replace"), memory_mb, filename)


def _wait(child: subprocess.Popen, request: bytes, guard: Guard) -> tuple[bytes, bytes]:
    payload = request
    while True:
        try:
            # At least 50 ms: communicate reads nothing in a call that times out at once.
            return child.communicate(payload, timeout=max(guard.interval, 0.05))
        except subprocess.TimeoutExpired:  # nothing is lost: communicate goes on where it stopped
            payload = None
            guard.step()  # the heartbeat (a cancel raises) and the time limit


def _answer(returncode: int, out: bytes, err: str, memory_mb: int, filename: str) -> ParsedDocument:
    reply = None
    if returncode == 0:
        try:
            reply = json.loads(out)
        except ValueError:
            reply = None
    if reply is None:
        if -returncode in OUT_OF_MEMORY_SIGNALS or any(mark in err for mark in OUT_OF_MEMORY_MARKS):
            raise ParseError(too_much_memory(memory_mb))
        if returncode < 0:
            raise ParseError(
                f"The document's reader stopped on it (signal {-returncode}): the file is damaged, "
                "or built to crash readers."
            )
        raise ReaderCrashed(f"the parsing child exited with {returncode}: {err[-2000:]}")
    log.info("Parsed %s in a child process: peak memory %.0f MB", filename, reply.get("peak_kb", 0) / 1024)
    error = reply.get("error")
    if error == "memory":
        raise ParseError(too_much_memory(memory_mb))
    if error == "limit":
        raise LimitExceeded(reply["message"])
    if error == "parse":
        raise ParseError(reply["message"])
    if error == "missing":
        raise FileNotFoundError(reply["message"])
    if error == "unreadable":
        log.warning("Parsing %s failed in its child process:\n%s", filename, err[-4000:])
        raise ParseError(unreadable(filename))
    pages = [Page(number, text) for number, text in reply["pages"]]
    read = [OcrPage(*page) for page in reply.get("ocr_pages", [])]
    return ParsedDocument(kind=reply["kind"], pages=pages, title=reply["title"], ocr_pages=read)


def _child() -> None:
    """The child: read the request, cap memory, parse, write one JSON reply."""
    import resource

    request = json.loads(sys.stdin.buffer.read())
    cap = request["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    reply = serve(request)
    reply["peak_kb"] = _peak_kb()
    sys.stdout.write(json.dumps(reply))
    sys.stdout.flush()


def serve(request: dict) -> dict:
    """What the child answers to one request: the parsed document, or why not."""
    from ingestion import parsing

    try:
        parsed = parsing.parse_file(
            request["path"],
            request["filename"],
            Guard(Limits(**request["limits"])),
            options=OcrOptions(**request.get("ocr", {})),
            searchable=request.get("searchable"),
        )
        return {
            "kind": parsed.kind,
            "title": parsed.title,
            "pages": [[p.number, p.text] for p in parsed.pages],
            "ocr_pages": [[p.number, p.confidence, p.words] for p in parsed.ocr_pages],
        }
    except parsing.ParseError as exc:
        return {"error": "parse", "message": str(exc)}
    except LimitExceeded as exc:
        return {"error": "limit", "message": str(exc)}
    except MemoryError:
        return {"error": "memory"}
    except FileNotFoundError as exc:
        return {"error": "missing", "message": str(exc)}
    except Exception:  # a parser library failed on this file: the file's fault, told as such (#26 L9)
        import traceback

        traceback.print_exc()  # for the operator: the parent logs it
        return {"error": "unreadable"}


def _peak_kb() -> int:
    """This process's own peak resident memory since exec (VmHWM): ru_maxrss
    also counts the forked parent's image the child started as."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    _child()
