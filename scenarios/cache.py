"""The response-cache path: chat completions drawn from the workload; every answer checked.

locust -f scenarios/cache.py --headless -u 20 -r 20 -t 60s
"""

import hermes_bench.scenarios.plugin  # noqa: F401  registers options and event listeners
from hermes_bench.scenarios.users import CacheUser

__all__ = ["CacheUser"]
