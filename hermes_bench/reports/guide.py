"""The guide's own figures, as its claims state them: read by the verdicts and the plots alike."""

from __future__ import annotations

# C1 and C2: response time with Redis and without, in ms.
RESPONSE_BANDS_MS = {"redis": (10.0, 50.0), "memory": (50.0, 200.0)}
WITH_REDIS_MS = RESPONSE_BANDS_MS["redis"][1]  # 50 ms: the most a response with Redis takes
DUPLICATE_REDUCTION = 0.8  # C3: 80% fewer duplicate OpenAI calls
REPEAT_SPEEDUP = 0.7  # C4: 70% faster for repeated queries
OP_MS = 5.0  # C5: ~5 ms per Redis operation
HASH_BYTES, JSON_BYTES = 200.0, 500.0  # C11: a session as a hash ~200 B, as JSON ~500 B
