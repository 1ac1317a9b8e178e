"""Locust scenarios: users, workloads and the measurements they feed."""
