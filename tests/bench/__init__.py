"""Benchmarks: `make bench` runs them all, `make bench BENCH=<name>` one.

Each prints one JSON object per line: name, metric, value, unit, and where it applies bound and
ratio (value / bound). They drive the real stack, like a user, on loopback only.
"""
