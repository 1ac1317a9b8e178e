"""The rate-limit path: bursts past the limit on fresh keys; every 429 must carry Retry-After.

locust -f scenarios/rate_limit.py --headless -u 4 -r 4 -t 60s
"""

import hermes_bench.scenarios.plugin  # noqa: F401  registers options and event listeners
from hermes_bench.scenarios.users import RateLimitUser

__all__ = ["RateLimitUser"]
