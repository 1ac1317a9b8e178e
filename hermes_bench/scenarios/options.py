"""hermes-bench options for Locust: added to Locust's own parser, each with an env-var twin.

Precedence is Locust's: command line > environment (HERMES_*) > config file > default.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from hermes_bench.errors import ConfigError
from hermes_bench.upstream.latency import ACCEPTED_FORMS

DEFAULT_METRICS_PATH = "hermes-metrics.json"


def add_options(parser: Any) -> None:
    """Register every option on Locust's parser (the init_command_line_parser event)."""

    def option(flag: str, env: str, help_text: str, **kwargs: Any) -> None:
        default = kwargs.get("default")
        shown = f" (default {default})" if default not in ("", None) else ""
        parser.add_argument(
            flag,
            env_var=env,
            help=f"{help_text}{shown} [env {env}]",
            include_in_web_ui=False,
            **kwargs,
        )

    option(
        "--hermes-targets",
        "HERMES_TARGETS",
        "comma-separated target URLs, spread like a non-sticky balancer (default: --host, "
        "or an embedded stack when neither is given)",
        default="",
    )
    option(
        "--hermes-backend",
        "HERMES_BACKEND",
        "backend of the embedded stack: redis or memory",
        default="redis",
        choices=("redis", "memory"),
    )
    option(
        "--hermes-instances",
        "HERMES_INSTANCES",
        "target instances in the embedded stack",
        type=int,
        default=2,
    )
    option(
        "--hermes-redis-url",
        "HERMES_REDIS_URL",
        "Redis for the embedded stack instead of a private redis-server",
        default="",
    )
    option(
        "--hermes-upstream-url",
        "HERMES_UPSTREAM_URL",
        "fake upstream whose ground truth to read when --host/--hermes-targets point at "
        "targets that use it (the embedded stack sets this itself)",
        default="",
    )
    option(
        "--hermes-upstream-latency",
        "HERMES_UPSTREAM_LATENCY",
        f"latency of the embedded fake upstream: {ACCEPTED_FORMS}",
        default="fixed:20ms",
    )
    option(
        "--hermes-rate-limit",
        "HERMES_RATE_LIMIT",
        "RATE_LIMIT per API key of the embedded targets",
        default="20/second",
    )
    option(
        "--hermes-workload",
        "HERMES_WORKLOAD",
        "zipf (seeded catalogue) or trace (replay of --hermes-trace)",
        default="zipf",
        choices=("zipf", "trace"),
    )
    option(
        "--hermes-zipf-alpha",
        "HERMES_ZIPF_ALPHA",
        "Zipf exponent of prompt popularity (0 = uniform)",
        type=float,
        default=1.0,
    )
    option(
        "--hermes-catalogue-size",
        "HERMES_CATALOGUE_SIZE",
        "distinct prompts in the catalogue",
        type=int,
        default=1000,
    )
    option(
        "--hermes-one-off-share",
        "HERMES_ONE_OFF_SHARE",
        "share of prompts asked once only (never cacheable)",
        type=float,
        default=0.1,
    )
    option("--hermes-seed", "HERMES_SEED", "seed of the workload", type=int, default=0)
    option(
        "--hermes-prompt-prefix",
        "HERMES_PROMPT_PREFIX",
        "text put before every prompt, so runs against one long-lived cache start cold",
        default="",
    )
    option(
        "--hermes-trace",
        "HERMES_TRACE",
        "JSONL or CSV trace to replay (fields: prompt, model, key, session, offset_s)",
        default="",
    )
    option(
        "--hermes-requests",
        "HERMES_REQUESTS",
        "chat requests drawn from the workload in the whole run, then it ends (0 = until "
        "--run-time; a trace ends with its last line)",
        type=int,
        default=0,
    )
    option(
        "--hermes-api-keys",
        "HERMES_API_KEYS_PER_RUN",
        "API keys the cache users rotate through (keeps them under the rate limit)",
        type=int,
        default=1000,
    )
    option(
        "--hermes-arrival-rate",
        "HERMES_ARRIVAL_RATE",
        "global target rate in requests/s for cache users; latency is then also counted "
        "from the intended send time (coordinated-omission correction). 0 = closed loop",
        type=float,
        default=0.0,
    )
    option(
        "--hermes-metrics-json",
        "HERMES_METRICS_JSON",
        "where to write the metrics JSON at the end of the run",
        default=DEFAULT_METRICS_PATH,
    )


def options_help() -> str:
    """Help text of the hermes-bench options alone (Locust prints --help before loading them)."""
    from locust.argument_parser import LocustArgumentParser

    parser = LocustArgumentParser(
        prog="locust -f locustfile.py",
        description="hermes-bench options for Locust; Locust's own are in 'locust --help'.",
        add_env_var_help=False,
        add_config_file_help=False,
    )
    add_options(parser)
    return str(parser.format_help())


@dataclass(frozen=True)
class ScenarioOptions:
    """The hermes-bench options, typed, as read from Locust's parsed options."""

    targets: tuple[str, ...]
    backend: str
    instances: int
    redis_url: str
    upstream_url: str
    upstream_latency: str
    rate_limit: str
    workload: str
    zipf_alpha: float
    catalogue_size: int
    one_off_share: float
    seed: int
    prompt_prefix: str
    trace: str
    requests: int
    api_keys: int
    arrival_rate: float
    metrics_json: str

    @classmethod
    def from_parsed(cls, parsed: argparse.Namespace | None) -> ScenarioOptions:
        """Read and check the options; ConfigError names the option at fault."""
        values = vars(parsed) if parsed is not None else {}

        def get(name: str, default: Any) -> Any:
            value = values.get(f"hermes_{name}")
            return default if value is None else value

        options = cls(
            targets=tuple(
                u.strip().rstrip("/") for u in get("targets", "").split(",") if u.strip()
            ),
            backend=get("backend", "redis"),
            instances=int(get("instances", 2)),
            redis_url=get("redis_url", ""),
            upstream_url=get("upstream_url", "").rstrip("/"),
            upstream_latency=get("upstream_latency", "fixed:20ms"),
            rate_limit=get("rate_limit", "20/second"),
            workload=get("workload", "zipf"),
            zipf_alpha=float(get("zipf_alpha", 1.0)),
            catalogue_size=int(get("catalogue_size", 1000)),
            one_off_share=float(get("one_off_share", 0.1)),
            seed=int(get("seed", 0)),
            prompt_prefix=get("prompt_prefix", ""),
            trace=get("trace", ""),
            requests=int(get("requests", 0)),
            api_keys=int(get("api_keys", 1000)),
            arrival_rate=float(get("arrival_rate", 0.0)),
            metrics_json=get("metrics_json", DEFAULT_METRICS_PATH),
        )
        options.check()
        return options

    def check(self) -> None:
        """ConfigError for combinations that cannot work."""
        if self.instances < 1:
            raise ConfigError(f"--hermes-instances must be at least 1, got {self.instances}")
        if self.api_keys < 1:
            raise ConfigError(f"--hermes-api-keys must be at least 1, got {self.api_keys}")
        if self.requests < 0:
            raise ConfigError(f"--hermes-requests must be >= 0, got {self.requests}")
        if self.arrival_rate < 0:
            raise ConfigError(f"--hermes-arrival-rate must be >= 0, got {self.arrival_rate}")
        if self.workload == "trace" and not self.trace:
            raise ConfigError("--hermes-workload trace needs --hermes-trace PATH")
