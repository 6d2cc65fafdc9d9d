"""Fine-tuning the answer model on the corpus (issue #16): examples
(examples.py), supervised training (sft.py), GGUF export (export.py), and the
run that ties them to the database (pipeline.py). docs/ARCHITECTURE.md,
"Fine-tuned generator", describes the steps."""
