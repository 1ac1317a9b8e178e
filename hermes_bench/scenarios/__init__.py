"""Locust scenarios: users, workloads and the measurements they feed.

Imports the leaves, the results model (for the metrics document it writes) and the stack (the
embedded stack of a plain `locust -f`); never the harness or the reports.
"""
