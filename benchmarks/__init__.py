"""Benchmarks, run by hand as ``python -m benchmarks.<name>``; they print figures and assert nothing timed."""
