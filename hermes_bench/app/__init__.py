"""The reference HERMES app: an OpenAI-compatible service with cache, rate limiter and sessions.

The system under test. Imports only the leaves (wire, histograms, errors, redaction, serving):
nothing of the stack, the scenarios or the harness.
"""
