"""Speed benchmarks, run from the repository root as ``python -m benchmarks.<name>`` (see each module's --help).

Timings on a shared machine drift between runs; every benchmark here times what it compares in one run, interleaved,
and reports ratios next to the absolute figures.
"""
