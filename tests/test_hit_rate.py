"""The ideal hit rate: none for no requests, an error for counts no sequence can have."""

from __future__ import annotations

import pytest

from hermes_bench.hit_rate import ideal_hit_rate


def test_ideal_hit_rate() -> None:
    assert ideal_hit_rate(0, 0) is None
    assert ideal_hit_rate(10, 10) == 0.0
    assert ideal_hit_rate(10, 2) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="distinct"):
        ideal_hit_rate(10, 11)
    with pytest.raises(ValueError, match="requests"):
        ideal_hit_rate(-1, 0)
