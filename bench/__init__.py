"""Benchmarks that start what they measure and report ratios to an in-run baseline (see README.md)."""
