"""Benchmarks, run from the repository root as ``python -m benchmarks.<name>`` (see each module's --help).

They print measured figures and assert nothing timed. Timings on a shared machine drift between runs, so every
benchmark times what it compares in one run, interleaved, and reports ratios next to the absolute figures.
"""
