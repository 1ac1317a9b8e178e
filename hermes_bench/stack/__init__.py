"""The system under test as processes: embedded Redis, the fake upstream and N app instances.

Imports the leaves (errors, redaction, sockets, http_json) and runs the apps as child processes
(`python -m hermes_bench app|upstream`); the apps never import it. Scenarios and the harness
build on it.
"""
