"""Keep the cyclic garbage collector's full passes short in processes that time requests."""

from __future__ import annotations

import gc


def keep_out_of_gc() -> None:
    """Collect once, then move every object alive (the imported libraries, the app, what a run
    has built so far) out of the collector's reach. A full pass walked them all: 40-100 ms
    with the OpenAI SDK or Locust loaded, a stall of every request in flight about once a
    second under load. Later garbage is still collected; only these objects are left alone."""
    gc.collect()
    gc.freeze()
