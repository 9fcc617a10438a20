"""Benchmarks: speed and memory figures, measured side by side in one run (not part of the test suite)."""
