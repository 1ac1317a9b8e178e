"""hermes-bench scenarios for Locust: `locust -f locustfile.py` (see hermes_bench/locustfile.py)."""

from hermes_bench.locustfile import CacheUser, MixedUser, RateLimitUser, SessionUser

__all__ = ["CacheUser", "MixedUser", "RateLimitUser", "SessionUser"]
