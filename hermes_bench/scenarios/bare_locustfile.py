"""The load generator's own limit: paced POST /_bare (the capacity sweep's "generator" cell).

locust -f hermes_bench/scenarios/bare_locustfile.py --hermes-arrival-rate 500 BareUser
"""

import hermes_bench.scenarios.plugin  # noqa: F401  registers options and event listeners
from hermes_bench.scenarios.users import BareUser

__all__ = ["BareUser"]
