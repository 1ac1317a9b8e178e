"""The typed results model: what a claims run measured, as results.json holds it.

Pure data over the leaves: written by the harness and the scenarios, read by the reports.
"""
