"""hermes-bench scenarios for Locust.

locust -f locustfile.py                      # starts its own stack (Redis, upstream, targets)
locust -f locustfile.py --host http://...    # loads a target you run
hermes-bench locust-options                  # every hermes-bench option (--hermes-*)
"""

import hermes_bench.scenarios.plugin  # noqa: F401  registers options and event listeners
from hermes_bench.scenarios.users import CacheUser, MixedUser, RateLimitUser, SessionUser

__all__ = ["CacheUser", "MixedUser", "RateLimitUser", "SessionUser"]
