"""Benchmarks that print figures against a running local stack (see bench/README.md)."""
