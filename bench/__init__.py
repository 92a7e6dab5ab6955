"""Benchmarks: each figure is a ratio measured side by side in one run, printed with its target."""
