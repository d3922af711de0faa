"""Benchmarks; run as modules (``python -m bench.http_bench``)."""
