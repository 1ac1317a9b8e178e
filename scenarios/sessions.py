"""The session path: create, read, merge, read again; payloads must come back intact.

locust -f scenarios/sessions.py --headless -u 10 -r 10 -t 60s
"""

import hermes_bench.scenarios.plugin  # noqa: F401  registers options and event listeners
from hermes_bench.scenarios.users import SessionUser

__all__ = ["SessionUser"]
