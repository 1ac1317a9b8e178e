"""All four hermes-bench users: `locust -f locustfile.py`; one path: `locust -f scenarios/cache.py`.

The users come from the installed package (hermes_bench/locustfile.py), not from scenarios/, so
a worker started with `-f -`, which gets this file but not the folder, loads them too.
"""

from hermes_bench.locustfile import CacheUser, MixedUser, RateLimitUser, SessionUser

__all__ = ["CacheUser", "MixedUser", "RateLimitUser", "SessionUser"]
