"""Fine-tuning the domain retriever on the corpus it serves (as in NVIDIA's ChipNeMo).

    data.py       split documents into train and held-out; sample passages
    queries.py    synthetic queries: LLM-written questions (filtered) and the
                  Inverse Cloze Task
    negatives.py  hard negatives from dense retrieval and BM25, minus any that
                  may answer the query
    train.py      contrastive fine-tuning with sentence-transformers
    cross_encoder.py the reranker (a cross-encoder) trained on the same triplets,
                  and how it re-orders and is judged
    evaluate.py   held-out retrieval before and after, against BM25 and hybrid
    report.py     the decisions (on real queries when there are enough) and
                  the report
    pipeline.py   the steps in order, with progress and a report; with
                  runs.py (options, progress), real.py (labelled and feedback
                  queries) and reranker_step.py (the reranker's step), the
                  modules here that touch Django

The others are free of Django; torch and sentence-transformers are
imported inside the functions that need them.
"""
