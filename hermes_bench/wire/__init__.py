"""What crosses the wire between clients, the app and the fake upstream.

A leaf: the chat request and its canonical hash, the one right answer, OpenAI's error body and
strict JSON bodies. It imports nothing of hermes-bench but errors; every other package may
import it.
"""
