"""Fine-tuning the domain retriever on the corpus it serves (as in NVIDIA's ChipNeMo).

    data.py       split documents into train and held-out; sample passages
    queries.py    synthetic queries: LLM-written questions (filtered) and the
                  Inverse Cloze Task
    negatives.py  hard negatives from dense retrieval and BM25, minus any that
                  may answer the query
    train.py      contrastive fine-tuning with sentence-transformers
    evaluate.py   held-out retrieval before and after, against BM25 and hybrid
    pipeline.py   the six steps in order, with progress and a report; the one
                  module here that touches the database

All but pipeline.py are free of Django; torch and sentence-transformers are
imported inside the functions that need them.
"""
