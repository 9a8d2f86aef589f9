"""Experiments: failure-tolerant multiruns, reading runs back, comparison reports, per-query analysis."""
