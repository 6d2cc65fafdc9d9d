"""The kernel every app may import and that imports none of them: state
transitions, environment helpers, the shared file store, version records and
their admin, bounded changelists, the broker helpers and the metrics
registry. Nothing here imports ragsite, ingestion, retrieval or generation
(tests/test_layout.py reads the imports)."""
