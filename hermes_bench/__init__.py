"""hermes-bench: load tests and benchmarks for the HERMES Redis guide's claims."""

__version__ = "0.1.0"
