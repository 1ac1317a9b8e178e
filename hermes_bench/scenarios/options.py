"""hermes-bench options for Locust: added to Locust's own parser, each with an env-var twin.

Each option is defined once, as a field of ScenarioOptions: its default there, its flag
(--hermes-<field name>), env var, help and choices in the field's metadata. The Locust parser
options and ScenarioOptions.from_parsed are both derived from those fields.
Precedence is Locust's: command line > environment (HERMES_*) > config file > default.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hermes_bench.errors import ConfigError
from hermes_bench.latency_spec import ACCEPTED_FORMS
from hermes_bench.results.vocabulary import BACKENDS, HIT, MISS

DEFAULT_METRICS_PATH = "reports/hermes-metrics.json"
_FLAG_PREFIX = "--hermes-"
_DEST_PREFIX = "hermes_"
_SPEC = "hermes_option"
# The reference app's header, whose value is the outcome itself (HIT, MISS or BYPASS).
DEFAULT_HIT_HEADER = "X-Cache"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """How one ScenarioOptions field appears on the command line and in the environment."""

    env: str
    help: str
    choices: tuple[str, ...] | None = None
    # Parsed value (a string for text options) -> field value; None: the default's type.
    parse: Callable[[Any], Any] | None = None


def _option(
    default: Any,
    env: str,
    help_text: str,
    *,
    choices: tuple[str, ...] | None = None,
    parse: Callable[[Any], Any] | None = None,
) -> Any:
    return field(default=default, metadata={_SPEC: OptionSpec(env, help_text, choices, parse)})


def _url_list(value: str) -> tuple[str, ...]:
    return tuple(u.strip().rstrip("/") for u in str(value).split(",") if u.strip())


def _url(value: str) -> str:
    return str(value).rstrip("/")


@dataclass(frozen=True, slots=True)
class HitHeader:
    """How a target marks its cache outcome on a chat answer: a header, and what it says.

    X-Cache alone (the default): its value is the outcome. NAME=VALUE: VALUE (any case) is a
    HIT, another value a MISS. NAME alone: present is a HIT, absent a MISS. In the first two an
    answer without the header has no outcome (None): the upstream's call log tells.
    """

    name: str  # lower case, as the response headers are looked up
    value: str | None  # lower case; None: the header's presence, or its own value, tells
    value_is_outcome: bool  # X-Cache alone: HIT, MISS, BYPASS as sent

    def outcome(self, sent: str | None) -> str | None:
        """The outcome an answer's header value `sent` (None: no such header) gives."""
        if self.value_is_outcome:
            return sent or None
        if self.value is None:
            return HIT if sent is not None else MISS
        if sent is None:
            return None
        return HIT if sent.strip().lower() == self.value else MISS


def parse_hit_header(spec: str) -> HitHeader:
    """HitHeader of --hermes-hit-header NAME[=VALUE]; ConfigError for a malformed one."""
    name, equals, value = str(spec).partition("=")
    name, value = name.strip(), value.strip()
    if not _TOKEN.fullmatch(name) or (equals and not value):
        raise ConfigError(
            f"--hermes-hit-header {spec!r} is not NAME or NAME=VALUE: give the header that marks "
            "a hit, e.g. X-From-Cache (present = hit) or cf-cache-status=HIT (that value = hit)"
        )
    if not equals:
        return HitHeader(name.lower(), None, name.lower() == DEFAULT_HIT_HEADER.lower())
    return HitHeader(name.lower(), value.lower(), False)


@dataclass(frozen=True)
class ScenarioOptions:
    """The hermes-bench options, typed; every default and help text of --hermes-* lives here."""

    targets: tuple[str, ...] = _option(
        (),
        "HERMES_TARGETS",
        "comma-separated target URLs, spread like a non-sticky balancer (default: --host, "
        "or an embedded stack when neither is given)",
        parse=_url_list,
    )
    backend: str = _option(
        "redis",
        "HERMES_BACKEND",
        "backend of the embedded stack: redis or memory",
        choices=BACKENDS,
    )
    instances: int = _option(2, "HERMES_INSTANCES", "target instances in the embedded stack")
    redis_url: str = _option(
        "", "HERMES_REDIS_URL", "Redis for the embedded stack instead of a private redis-server"
    )
    upstream_url: str = _option(
        "",
        "HERMES_UPSTREAM_URL",
        "fake upstream whose ground truth to read when --host/--hermes-targets point at "
        "targets that use it (the embedded stack sets this itself)",
        parse=_url,
    )
    upstream_latency: str = _option(
        "fixed:20ms",
        "HERMES_UPSTREAM_LATENCY",
        f"latency of the embedded fake upstream: {ACCEPTED_FORMS}",
    )
    rate_limit: str = _option(
        "20/second", "HERMES_RATE_LIMIT", "RATE_LIMIT per API key of the embedded targets"
    )
    workload: str = _option(
        "zipf",
        "HERMES_WORKLOAD",
        "zipf (seeded catalogue) or trace (replay of --hermes-trace)",
        choices=("zipf", "trace"),
    )
    zipf_alpha: float = _option(
        1.0, "HERMES_ZIPF_ALPHA", "Zipf exponent of prompt popularity (0 = uniform)"
    )
    catalogue_size: int = _option(
        1000, "HERMES_CATALOGUE_SIZE", "distinct prompts in the catalogue"
    )
    one_off_share: float = _option(
        0.1, "HERMES_ONE_OFF_SHARE", "share of prompts asked once only (never cacheable)"
    )
    seed: int = _option(0, "HERMES_SEED", "seed of the workload")
    prompt_prefix: str = _option(
        "",
        "HERMES_PROMPT_PREFIX",
        "text put before every prompt, so runs against one long-lived cache start cold",
    )
    trace: str = _option(
        "",
        "HERMES_TRACE",
        "JSONL or CSV trace to replay (fields: prompt, model, key, session, offset_s)",
    )
    requests: int = _option(
        0,
        "HERMES_REQUESTS",
        "chat requests drawn from the workload in the whole run, then it ends (0 = until "
        "--run-time; a trace ends with its last line)",
    )
    api_keys: int = _option(
        1000,
        "HERMES_API_KEYS_PER_RUN",
        "API keys the cache users rotate through (keeps them under the rate limit)",
    )
    arrival_rate: float = _option(
        0.0,
        "HERMES_ARRIVAL_RATE",
        "global target rate in requests/s for cache users; latency is then also counted "
        "from the intended send time (coordinated-omission correction). 0 = closed loop",
    )
    stream: str = _option(
        "off",
        "HERMES_STREAM",
        "on: the cache users ask with stream: true, read the events and record the time to "
        "the first token per outcome (scenario _ttft) beside the whole answer's time",
        choices=("off", "on"),
    )
    hit_header: str = _option(
        DEFAULT_HIT_HEADER,
        "HERMES_HIT_HEADER",
        "how the targets mark a cache hit: NAME=VALUE (that value is a HIT, another a MISS, "
        "none: the upstream's call log decides) or NAME (present = HIT, absent = MISS); "
        "X-Cache alone reads HIT, MISS or BYPASS from its value",
    )
    metrics_json: str = _option(
        DEFAULT_METRICS_PATH,
        "HERMES_METRICS_JSON",
        "where to write the metrics JSON at the end of the run",
    )

    @classmethod
    def from_parsed(cls, parsed: argparse.Namespace | None) -> ScenarioOptions:
        """Read and check the options (None: every default); ConfigError names the one at fault."""
        values = vars(parsed) if parsed is not None else {}
        given: dict[str, Any] = {}
        for option in dataclasses.fields(cls):
            value = values.get(_DEST_PREFIX + option.name)
            if value is not None:
                given[option.name] = _parser_of(option)(value)
        options = cls(**given)
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
        parse_hit_header(self.hit_header)


def _spec(option: dataclasses.Field[Any]) -> OptionSpec:
    spec = option.metadata[_SPEC]
    assert isinstance(spec, OptionSpec)
    return spec


def _parser_of(option: dataclasses.Field[Any]) -> Callable[[Any], Any]:
    parse = _spec(option).parse
    return parse if parse is not None else type(option.default)


def flag(name: str) -> str:
    """The command-line flag of ScenarioOptions field `name`: --hermes-<name with dashes>."""
    return _FLAG_PREFIX + name.replace("_", "-")


def add_options(parser: Any) -> None:
    """Register every option on Locust's parser (the init_command_line_parser event)."""
    for option in dataclasses.fields(ScenarioOptions):
        spec = _spec(option)
        default = option.default
        kwargs: dict[str, Any] = {}
        if isinstance(default, tuple):  # a list option: one comma-separated string
            default = ",".join(default)
        elif isinstance(default, int | float):
            kwargs["type"] = type(default)
        if spec.choices is not None:
            kwargs["choices"] = spec.choices
        shown = f" (default {default})" if default not in ("", None) else ""
        parser.add_argument(
            flag(option.name),
            env_var=spec.env,
            help=f"{spec.help}{shown} [env {spec.env}]",
            include_in_web_ui=False,
            default=default,
            **kwargs,
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
