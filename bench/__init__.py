"""pushlane benchmarks: `make bench` (python -m bench)."""
