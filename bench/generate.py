"""Generation speed and answer quality.

    .venv/bin/python bench/generate.py

In one run, on the same GGUF and the same RAG prompt (5 passages, ~800 prompt
tokens, greedy, same thread count):
  - our engine (generation.engines.llamacpp, cyllama binding) against
    llama.cpp called directly through llama-cpp-python: time to first token
    and decode tokens/second;
  - the end-to-end answer latency (services.ask, what POST /api/ask runs),
    split into guardrails, retrieval, prompt, first token, decode, attribution;
  - answer quality on a labelled set over the demo corpus: the share of
    answers whose citations point at a passage holding the answer, and the
    share whose text states it.
Writes bench/results/generate.json and prints Markdown tables.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, setup_django  # noqa: E402

THREADS = int(os.environ.get("BENCH_THREADS", os.cpu_count() or 2))
RUNS = 3
LABELLED = [  # question, a phrase of the answer, the file holding it
    ("What is the annual fee of the Gold card?", "95 euros", "card-handbook.pdf"),
    ("What is the annual fee of the Platinum card?", "250 euros", "card-handbook.pdf"),
    ("Which card includes airport lounge access?", "Platinum", "card-handbook.pdf"),
    ("What is the purchase interest rate of the Silver card?", "22.9", "card-handbook.pdf"),
    ("How long do I have to file an expense claim?", "30 days", "travel-policy.md"),
    ("What is the hotel limit per night in London?", "260 euros", "travel-policy.md"),
    ("What is the daily meal allowance?", "55 euros", "travel-policy.md"),
    ("How far ahead must business travel be booked?", "14 days", "travel-policy.md"),
    ("How do I report a lost card?", "24-hour card line", "support-faq.txt"),
    ("How much does a transfer in other currencies cost?", "12 euros", "support-faq.txt"),
    ("How long does a replacement card take to arrive?", "five working days", "support-faq.txt"),
    ("Where can I change my PIN?", "cash machine", "support-faq.txt"),
]


def timed_stream(stream):
    """(seconds to first piece, seconds after it, text)"""
    start = time.perf_counter()
    first, text = None, ""
    for piece in stream:
        if first is None:
            first = time.perf_counter()
        text += piece
    end = time.perf_counter()
    return (first or end) - start, end - (first or end), text


def peer_main():
    """The peer's side: llama-cpp-python alone in this process."""
    from llama_cpp import Llama

    request = json.loads(sys.stdin.read())
    direct = Llama(
        request["model"], n_ctx=request["context"], n_threads=THREADS, n_threads_batch=THREADS, verbose=False
    )

    def direct_stream(messages, limit):
        direct.reset()  # no reuse of an earlier prompt's cache
        for chunk in direct.create_chat_completion(messages, temperature=0.0, max_tokens=limit, stream=True):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield piece

    list(direct_stream(request["prompts"][-1], 4))
    runs = []
    for messages in request["prompts"][:RUNS]:
        ttft, decode, text = timed_stream(direct_stream(messages, request["max_new"]))
        runs.append([ttft, (len(direct.tokenize(text.encode(), add_bos=False)) - 1) / decode if decode else 0.0])
    print(json.dumps(runs))


def main():
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    call_command("ingest", str(ROOT / "demo"), "--inline", stdout=open(os.devnull, "w"))
    from generation import services
    from generation.engines.llamacpp import LlamaCppEngine
    from generation.prompts import EvidenceLine, build_prompt
    from retrieval.search import search

    engine = LlamaCppEngine(settings.RAG_GENERATOR_MODEL, settings.RAG_GENERATOR_CONTEXT, THREADS)
    # A different question each run: neither side may serve a repeated prompt from its cache.
    questions = [
        "What is the annual fee of the Gold card, and what does the Platinum card include?",
        "Which cards earn reward points, and what interest rate does the Silver card charge?",
        "What insurance comes with each card, and how long are cards issued for?",
        "What does the Platinum card cost per year, and which card has no annual fee?",
    ]
    prompts = []
    for question in questions:
        hits = search(question, k=5)
        prompts.append(
            build_prompt(
                question, [EvidenceLine(h.text) for h in hits], count_tokens=engine.count_tokens, budget=1800
            ).messages
        )
    prompt_tokens = round(median(sum(engine.count_tokens(m["content"]) for m in p) for p in prompts))
    max_new = 96

    # Ours: the engine the application uses.
    engine.warm_up()
    list(engine.stream(prompts[-1], max_new_tokens=4))
    ours, reused = [], []
    for messages in prompts[:RUNS]:
        ttft, decode, text = timed_stream(engine.stream(messages, max_new_tokens=max_new))
        ours.append((ttft, (engine.count_tokens(text) - 1) / decode if decode else 0.0))
        reused.append(engine._cache.reused)  # prompt tokens served from the prefix cache

    # Peer: llama.cpp called directly (llama-cpp-python), same file, same
    # threads, in its own process (two llama.cpp builds in one process crash).
    request = {
        "model": settings.RAG_GENERATOR_MODEL,
        "context": settings.RAG_GENERATOR_CONTEXT,
        "prompts": prompts,
        "max_new": max_new,
    }
    output = subprocess.run(
        [sys.executable, __file__, "--peer"], input=json.dumps(request), capture_output=True, text=True, check=True
    ).stdout
    peer = [tuple(run) for run in json.loads(output.strip().splitlines()[-1])]

    # End to end, and quality.
    services.ask(LABELLED[0][0])  # warm
    splits, cited_right, stated, wrong_but_cited = [], 0, 0, 0
    for q, answer, filename in LABELLED:
        result = services.ask(q)
        splits.append(result.timings)
        if any(answer.lower() in c["quote"].lower() and c["filename"] == filename for c in result.citations):
            cited_right += 1
        states = answer.lower() in result.answer.lower()
        stated += states
        wrong_but_cited += bool(result.citations) and not states

    def med(key):
        return round(median(s.get(key, 0.0) for s in splits), 1)

    keys = [
        "guardrail_question",
        "retrieval",
        "prompt",
        "first_token",
        "generation",
        "guardrail_answer",
        "attribution",
        "total",
    ]
    outside = round(median(s["total"] - s.get("first_token", 0) - s.get("generation", 0) for s in splits), 1)
    result = {
        "prompt_tokens": prompt_tokens,
        "threads": THREADS,
        "ours_prefix_cache_tokens_reused": round(median(reused)),
        "ours_flash_attention": settings.RAG_GENERATOR_FLASH_ATTENTION,
        "ours_ttft_s": round(median(t for t, _ in ours), 3),
        "direct_ttft_s": round(median(t for t, _ in peer), 3),
        "ours_decode_tok_s": round(median(r for _, r in ours), 1),
        "direct_decode_tok_s": round(median(r for _, r in peer), 1),
        "ttft_ours_over_direct": round(median(t for t, _ in ours) / median(t for t, _ in peer), 3),
        "decode_ours_over_direct": round(median(r for _, r in ours) / median(r for _, r in peer), 3),
        "ask_ms": {k: med(k) for k in keys},
        "ask_overhead_outside_model_ms": outside,
        "quality_cited_passage_holds_answer": f"{cited_right}/{len(LABELLED)}",
        "quality_answer_states_it": f"{stated}/{len(LABELLED)}",
        "quality_wrong_answer_shown_as_cited": f"{wrong_but_cited}/{len(LABELLED)}",
    }
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "generate.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    peer_main() if "--peer" in sys.argv else main()
