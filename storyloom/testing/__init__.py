"""Helpers for the tests and benchmarks only (local services, a checkpoint writer); the
product never imports this package (tests/test_architecture.py checks it)."""
