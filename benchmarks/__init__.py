"""Benchmarks of jaguar_sdk: every figure a ratio against a baseline measured in the same run.

Run them all with ``python -m benchmarks`` (see ``benchmarks/README.md``).
"""

BENCHMARKS = ("client_overhead", "load", "encoding", "concurrency", "gpu", "lora")

__all__ = ["BENCHMARKS"]
