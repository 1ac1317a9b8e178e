"""The hermes-bench command: options → cells → results → reports.

The top layer: it may import every other package; none imports it.
"""
