"""Benchmarks: `uv run python -m bench [NAME ...]` against a real localbase on a temp dir."""
