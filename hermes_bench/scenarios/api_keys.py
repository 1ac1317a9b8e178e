"""--hermes-api-keys: how many keys the cache users make up, or the very keys a target accepts."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from hermes_bench.errors import ConfigError
from hermes_bench.wire.api_key import api_key_problem

_COUNT = re.compile(r"[+-]?\d+")
GENERATED_KEY_PREFIX = "sk-hermes-bench-"


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """`count` keys made up (sk-hermes-bench-0, -1, ...), or the `given` ones, which are
    secrets: kept out of repr, so out of logs."""

    count: int
    given: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def parse(cls, value: object) -> ApiKeys:
        """A whole number (keys to make up) or comma-separated keys; ConfigError for neither."""
        if isinstance(value, ApiKeys):
            return value
        text = str(value).strip()
        if _COUNT.fullmatch(text):
            return cls(int(text))
        given = tuple(k.strip() for k in text.split(",") if k.strip())
        if not given:
            raise ConfigError(
                "--hermes-api-keys lists no key: give a number of keys to make up (e.g. 1000) "
                "or the keys the targets accept (their HERMES_API_KEYS), separated by commas"
            )
        for number, key in enumerate(given, 1):
            problem = api_key_problem(key)
            if problem is not None:
                raise ConfigError(f"--hermes-api-keys: key {number} is not an API key: {problem}")
        return cls(len(given), given)

    def check(self) -> None:
        """ConfigError when there is no key to send."""
        if self.count < 1:
            raise ConfigError(f"--hermes-api-keys must be at least 1, got {self.count}")

    def pick(self, rng: random.Random) -> str:
        """One key, drawn evenly: spread over many keys, the load stays under a per-key limit."""
        # int(random() * n) is below n for any n this holds, and a third of randrange's cost.
        index = int(rng.random() * self.count)
        return self.given[index] if self.given else f"{GENERATED_KEY_PREFIX}{index}"

    def __str__(self) -> str:
        return str(self.count) if not self.given else f"{self.count} keys given"
