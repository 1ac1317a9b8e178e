"""hermes-bench scenarios for Locust.

locust -f locustfile.py                      # starts its own stack (Redis, upstream, targets)
locust -f locustfile.py --host http://...    # loads a target you run
locust -f locustfile.py --hermes-help        # every hermes-bench option (--hermes-*); or
hermes-bench locust-options                  # the same without Locust

At every test stop the metrics JSON and two CSVs go beside --csv/--html (or to
reports/locust-<date>-<time>-<id>/), and the figures into Locust's --html report.
"""

import hermes_bench.scenarios.plugin  # noqa: F401  registers options and event listeners
from hermes_bench.scenarios.users import CacheUser, MixedUser, RateLimitUser, SessionUser

__all__ = ["CacheUser", "MixedUser", "RateLimitUser", "SessionUser"]
