"""Benchmarks: `make bench` runs them and writes one Markdown report."""
