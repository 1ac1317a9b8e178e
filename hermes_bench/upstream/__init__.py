"""Fake OpenAI upstream: deterministic answers, a latency model, faults and call ground truth.

Imports only the leaves (wire, errors, serving); the stack runs it as a process.
"""
