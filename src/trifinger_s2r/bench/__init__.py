"""Throughput benchmarks; their output goes to docs/benchmarks.md, never into tests."""
