"""hermes-bench options for Locust: added to Locust's own parser, the Locust way.

Each option is defined once, as a field of ScenarioOptions: its default there, its flag
(--hermes-<field name>), help, choices and check in the field's metadata. The Locust parser
options and ScenarioOptions.from_parsed are both derived from those fields.
Precedence is Locust's, stated once: command line > environment (LOCUST_HERMES_<NAME>) >
config file (`hermes-<name> = value` in locust.conf, or [tool.locust] in pyproject.toml) >
the older variable names (HERMES_<NAME>, kept as aliases) > default.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hermes_bench.errors import ConfigError
from hermes_bench.latency_spec import ACCEPTED_FORMS, parse_latency
from hermes_bench.redaction import redact_url
from hermes_bench.results.vocabulary import BACKENDS
from hermes_bench.scenarios.api_keys import ApiKeys
from hermes_bench.scenarios.hit_header import DEFAULT_HIT_HEADER, parse_hit_header
from hermes_bench.scenarios.workload import (
    check_alpha,
    check_catalogue_size,
    check_one_off_share,
    check_seed,
)

_FLAG_PREFIX = "--hermes-"
_DEST_PREFIX = "hermes_"
_ENV_PREFIX = "LOCUST_HERMES_"
_SPEC = "hermes_option"
HELP_FLAG = "--hermes-help"


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """How one ScenarioOptions field appears on the command line and what it accepts."""

    help: str
    alias_env: str | None = None  # the variable's older name, still read
    choices: tuple[str, ...] | None = None
    # Parsed value (a string for text options) -> field value; None: the default's type.
    parse: Callable[[Any], Any] | None = None
    # Field value -> None, or ConfigError saying what is wrong with it.
    check: Callable[[Any], None] | None = None


def _option(
    default: Any,
    help_text: str,
    *,
    alias_env: str | None = None,
    choices: tuple[str, ...] | None = None,
    parse: Callable[[Any], Any] | None = None,
    check: Callable[[Any], None] | None = None,
) -> Any:
    spec = OptionSpec(help_text, alias_env, choices, parse, check)
    return field(default=default, metadata={_SPEC: spec})


def _url_list(value: str) -> tuple[str, ...]:
    return tuple(u.strip().rstrip("/") for u in str(value).split(",") if u.strip())


def _url(value: str) -> str:
    return str(value).rstrip("/")


def http_url_problem(url: str) -> str | None:
    """Why `url` is not an http(s) URL with a host, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range or not a number
    except ValueError as exc:  # an unbalanced IPv6 bracket, a port that is not a number...
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "it does not start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    return None


def check_http_url(url: str, name: str) -> None:
    """ConfigError unless `url` is an http(s) URL with a host: `name` says whose it is."""
    if http_url_problem(url) is not None:
        raise ConfigError(
            f"{name} {redact_url(url)!r} is not an http(s) URL: write it like http://127.0.0.1:8000"
        )


def _check_targets(urls: tuple[str, ...]) -> None:
    for url in urls:
        check_http_url(url, "--hermes-targets")


def _check_upstream(url: str) -> None:
    if url:
        check_http_url(url, "--hermes-upstream-url")


def _at_least(minimum: int, flag_name: str) -> Callable[[int], None]:
    def check(value: int) -> None:
        if value < minimum:
            raise ConfigError(f"{flag_name} must be at least {minimum}, got {value}")

    return check


def _check_requests(value: int) -> None:
    if value < 0:
        raise ConfigError(f"--hermes-requests must be >= 0, got {value}")


def _check_arrival_rate(value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"--hermes-arrival-rate must be a finite number >= 0, got {value}")


def _check_latency(spec: str) -> None:
    parse_latency(spec)


def _check_rate_limit(spec: str) -> None:
    # The reference app's own reading of RATE_LIMIT: the targets would refuse what it refuses.
    from hermes_bench.app.settings import TargetSettings

    TargetSettings.from_env({"RATE_LIMIT": spec})


def _check_hit_header(spec: str) -> None:
    parse_hit_header(spec)


def _check_api_keys(keys: ApiKeys) -> None:
    keys.check()


@dataclass(frozen=True)
class ScenarioOptions:
    """The hermes-bench options, typed; every default and help text of --hermes-* lives here."""

    targets: tuple[str, ...] = _option(
        (),
        "comma-separated target URLs, spread like a non-sticky balancer (default: --host, "
        "or an embedded stack when neither is given)",
        alias_env="HERMES_TARGETS",
        parse=_url_list,
        check=_check_targets,
    )
    backend: str = _option(
        "redis",
        "backend of the embedded stack: redis or memory",
        alias_env="HERMES_BACKEND",
        choices=BACKENDS,
    )
    instances: int = _option(
        2,
        "target instances in the embedded stack",
        alias_env="HERMES_INSTANCES",
        check=_at_least(1, "--hermes-instances"),
    )
    redis_url: str = _option(
        "",
        "Redis for the embedded stack instead of a private redis-server",
        alias_env="HERMES_REDIS_URL",
    )
    upstream_url: str = _option(
        "",
        "fake upstream whose ground truth to read when --host/--hermes-targets point at "
        "targets that use it (the embedded stack sets this itself)",
        alias_env="HERMES_UPSTREAM_URL",
        parse=_url,
        check=_check_upstream,
    )
    upstream_latency: str = _option(
        "fixed:20ms",
        f"latency of the embedded fake upstream: {ACCEPTED_FORMS}",
        alias_env="HERMES_UPSTREAM_LATENCY",
        check=_check_latency,
    )
    rate_limit: str = _option(
        "20/second",
        "RATE_LIMIT per API key of the embedded targets",
        alias_env="HERMES_RATE_LIMIT",
        check=_check_rate_limit,
    )
    workload: str = _option(
        "zipf",
        "zipf (seeded catalogue) or trace (replay of --hermes-trace)",
        alias_env="HERMES_WORKLOAD",
        choices=("zipf", "trace"),
    )
    zipf_alpha: float = _option(
        1.0,
        "Zipf exponent of prompt popularity (0 = uniform)",
        alias_env="HERMES_ZIPF_ALPHA",
        check=check_alpha,
    )
    catalogue_size: int = _option(
        1000,
        "distinct prompts in the catalogue",
        alias_env="HERMES_CATALOGUE_SIZE",
        check=check_catalogue_size,
    )
    one_off_share: float = _option(
        0.1,
        "share of prompts asked once only (never cacheable)",
        alias_env="HERMES_ONE_OFF_SHARE",
        check=check_one_off_share,
    )
    seed: int = _option(0, "seed of the workload", alias_env="HERMES_SEED", check=check_seed)
    prompt_prefix: str = _option(
        "",
        "text put before every prompt, so runs against one long-lived cache start cold",
        alias_env="HERMES_PROMPT_PREFIX",
    )
    trace: str = _option(
        "",
        "JSONL or CSV trace to replay (fields: prompt, model, key, session, offset_s)",
        alias_env="HERMES_TRACE",
    )
    requests: int = _option(
        0,
        "chat requests drawn from the workload in the whole run, then it ends (0 = until "
        "--run-time; a trace ends with its last line)",
        alias_env="HERMES_REQUESTS",
        check=_check_requests,
    )
    api_keys: ApiKeys = _option(  # noqa: RUF009  ApiKeys is frozen: a safe default
        ApiKeys(1000),
        "API keys the cache users rotate through, to stay under a per-key rate limit: a number "
        "of keys to make up (sk-hermes-bench-0, -1, ...), or the keys themselves, separated by "
        "commas, for targets that accept only those (their HERMES_API_KEYS)",
        alias_env="HERMES_API_KEYS_PER_RUN",
        parse=ApiKeys.parse,
        check=_check_api_keys,
    )
    arrival_rate: float = _option(
        0.0,
        "global target rate in requests/s for cache users; latency is then also counted "
        "from the intended send time (coordinated-omission correction). 0 = closed loop",
        alias_env="HERMES_ARRIVAL_RATE",
        check=_check_arrival_rate,
    )
    stream: str = _option(
        "off",
        "on: the cache users ask with stream: true, read the events and record the time to "
        "the first token per outcome (scenario _ttft) beside the whole answer's time",
        alias_env="HERMES_STREAM",
        choices=("off", "on"),
    )
    hit_header: str = _option(
        DEFAULT_HIT_HEADER,
        "how the targets mark a cache hit: NAME=VALUE (that value is a HIT, another a MISS, "
        "none: the upstream's call log decides) or NAME (present = HIT, absent = MISS); "
        "X-Cache alone reads HIT, MISS or BYPASS from its value",
        alias_env="HERMES_HIT_HEADER",
        check=_check_hit_header,
    )
    output: str = _option(
        "",
        "folder for the metrics (hermes-metrics.json) and hermes CSVs of the run (default: "
        "beside --csv or --html when given, else a folder of the run's own, "
        "reports/locust-<date>-<time>-<id>/)",
    )
    metrics_json: str = _option(
        "",
        "exact path of the metrics JSON, written at every test stop (default: see --hermes-output)",
        alias_env="HERMES_METRICS_JSON",
    )

    def __post_init__(self) -> None:
        # A plain number of keys, as callers building options directly give it (bench/).
        if not isinstance(self.api_keys, ApiKeys):
            object.__setattr__(self, "api_keys", ApiKeys.parse(self.api_keys))

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
        """ConfigError for a value, or a combination, that cannot work."""
        for option in dataclasses.fields(self):
            check = _spec(option).check
            if check is not None:
                check(getattr(self, option.name))
        if self.workload == "trace" and not self.trace:
            raise ConfigError("--hermes-workload trace needs --hermes-trace PATH")


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


def env_var(name: str) -> str:
    """The variable of field `name`, Locust's way: LOCUST_ and the option's name in capitals."""
    return _ENV_PREFIX + name.upper()


def _shown(default: Any) -> str:
    """A default as it is written on the command line."""
    if isinstance(default, tuple):
        return ",".join(default)
    return str(default)


def _argument_type(option: dataclasses.Field[Any]) -> Callable[[str], Any]:
    """The parser's type for one option: the value as Locust keeps it (a number or the text,
    which travels to the workers as is), checked now, so a bad one stops Locust at once."""
    default = option.default
    scalar: type = type(default) if type(default) in (int, float) else str
    name = flag(option.name)

    def convert(text: str) -> Any:
        try:
            value = scalar(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {scalar.__name__} value: {text!r}") from None
        try:
            checked = _spec(option).check
            if checked is not None:
                checked(_parser_of(option)(value))
        except ConfigError as exc:
            # argparse names the option already: "argument --hermes-x: <what is wrong>".
            raise argparse.ArgumentTypeError(str(exc).removeprefix(name + " ")) from None
        return value

    convert.__name__ = scalar.__name__
    return convert


class _PrintOptionsHelp(argparse.Action):
    """--hermes-help: Locust prints --help before it reads the locustfile, so without these."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        print(options_help())
        parser.exit(0)


def add_options(parser: Any, environ: Mapping[str, str] | None = None) -> None:
    """Register every option on Locust's parser (the init_command_line_parser event).

    `environ` (default os.environ) is read for the older HERMES_* names only; Locust reads
    LOCUST_HERMES_* and the config file itself.
    """
    environ = os.environ if environ is None else environ
    parser.add_argument(
        HELP_FLAG,
        action=_PrintOptionsHelp,
        help="print the hermes-bench options (--hermes-*) and exit",
        include_in_web_ui=False,
    )
    for option in dataclasses.fields(ScenarioOptions):
        spec = _spec(option)
        shown = _shown(option.default)
        default = environ.get(spec.alias_env, shown) if spec.alias_env else shown
        kwargs: dict[str, Any] = {}
        if spec.choices is not None:
            kwargs["choices"] = spec.choices
        env = env_var(option.name)
        parser.add_argument(
            flag(option.name),
            env_var=env,
            type=_argument_type(option),
            help=f"{spec.help}{f' (default {shown})' if shown else ''} [env {env}]",
            include_in_web_ui=False,
            default=default,
            **kwargs,
        )


def options_help() -> str:
    """Help text of the hermes-bench options alone (Locust prints --help before loading them)."""
    from locust.argument_parser import LocustArgumentParser

    where = (
        "Each can also be set in the environment: LOCUST_ and the option's name in capitals "
        "with underscores (LOCUST_HERMES_BACKEND=memory); or in a config file: the option's "
        "name without its dashes (hermes-backend = memory in locust.conf, or under [tool.locust] "
        "in pyproject.toml). Command line > environment > config file > the older HERMES_* "
        "variable names > default."
    )
    parser = LocustArgumentParser(
        prog="locust -f locustfile.py",
        usage="locust -f locustfile.py [--hermes-* options] [Locust's options]",
        description="hermes-bench options for Locust; Locust's own are in 'locust --help'.\n\n"
        + textwrap.fill(where, 79),
        add_env_var_help=False,
        add_config_file_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(parser, environ={})
    return str(parser.format_help())
