"""Benchmarks and fault runs (see bench/README.md)."""
