"""A HERMES-like mix: a session, a few chat turns recorded in it, an occasional burst.

locust -f scenarios/mixed.py --headless -u 10 -r 10 -t 60s
"""

import hermes_bench.scenarios.plugin  # noqa: F401  registers options and event listeners
from hermes_bench.scenarios.users import MixedUser

__all__ = ["MixedUser"]
