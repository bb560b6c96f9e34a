"""Benchmarks: measured figures, never timed assertions (``python -m benchmarks.<name>``)."""
