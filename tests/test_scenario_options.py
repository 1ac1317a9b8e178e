"""--hermes-* options: one definition gives Locust's parser options and ScenarioOptions alike."""

from __future__ import annotations

import argparse
import dataclasses
import random
from typing import Any

import configargparse
import pytest

from hermes_bench.errors import ConfigError
from hermes_bench.latency_spec import parse_latency
from hermes_bench.scenarios.api_keys import ApiKeys
from hermes_bench.scenarios.options import (
    ScenarioOptions,
    add_options,
    env_var,
    flag,
    parse_hit_header,
)
from hermes_bench.scenarios.workload import ZipfWorkload


class _LocustLikeParser(configargparse.ArgumentParser):  # type: ignore[misc]
    """Locust's parser is configargparse's plus include_in_web_ui; importing locust itself would
    monkey-patch this test process with gevent."""

    def add_argument(self, *args: Any, include_in_web_ui: bool = True, **kwargs: Any) -> Any:
        if args[0].startswith("--hermes-"):
            assert include_in_web_ui is False  # they stay off Locust's web form
        return super().add_argument(*args, **kwargs)


def _parser(aliases: dict[str, str] | None = None) -> _LocustLikeParser:
    parser = _LocustLikeParser(prog="locust")
    add_options(parser, environ=aliases or {})
    return parser


def _parse(
    *args: str,
    env: dict[str, str] | None = None,
    config: str = "",
    aliases: dict[str, str] | None = None,
) -> argparse.Namespace:
    """Parse as Locust does: the command line, its environment, a locust.conf's contents."""
    parsed, _ = _parser(aliases).parse_known_args(
        list(args), env_vars=env or {}, config_file_contents=config
    )
    return parsed


def _actions() -> dict[str, Any]:
    options = _parser()._actions
    return {a.dest: a for a in options if a.dest.startswith("hermes_") and a.dest != "hermes_help"}


def _refusal(capsys: pytest.CaptureFixture[str], *args: str, **kwargs: Any) -> str:
    """The one line the parser exits with (code 2, argparse's and Locust's usage error)."""
    with pytest.raises(SystemExit) as caught:
        _parse(*args, **kwargs)
    assert caught.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_defaults_are_the_dataclass_defaults() -> None:
    from_locust = ScenarioOptions.from_parsed(_parse())
    assert from_locust == ScenarioOptions() == ScenarioOptions.from_parsed(None)
    assert (from_locust.metrics_json, from_locust.output) == ("", "")  # where: output_paths
    assert (from_locust.backend, from_locust.instances, from_locust.targets) == ("redis", 2, ())
    assert from_locust.api_keys == ApiKeys(1000)


def test_every_field_has_one_flag_and_the_locust_variable() -> None:
    actions = _actions()
    names = [f.name for f in dataclasses.fields(ScenarioOptions)]
    assert sorted(actions) == sorted(f"hermes_{name}" for name in names)
    for name in names:
        action = actions[f"hermes_{name}"]
        assert action.option_strings == [flag(name)]
        # Locust's convention: LOCUST_ and the option's name in capitals, dashes as underscores.
        assert action.env_var == "LOCUST_" + flag(name).removeprefix("--").upper().replace("-", "_")
        assert action.help.endswith(f"[env {action.env_var}]")
    assert env_var("api_keys") == "LOCUST_HERMES_API_KEYS"  # not the app's HERMES_API_KEYS
    assert actions["hermes_backend"].choices == ("redis", "memory")
    assert actions["hermes_workload"].choices == ("zipf", "trace")


def test_help_shows_the_defaults_once_given() -> None:
    actions = _actions()
    assert "(default redis)" in actions["hermes_backend"].help
    assert "(default 0.0)" in actions["hermes_arrival_rate"].help
    assert "(default 1000)" in actions["hermes_api_keys"].help
    assert "(default )" not in actions["hermes_targets"].help  # empty defaults are not shown


def test_command_line_over_environment_over_config_file_over_old_names() -> None:
    aliases = {"HERMES_SEED": "1", "HERMES_ZIPF_ALPHA": "0.1", "HERMES_BACKEND": "memory"}
    config = "hermes-seed = 2\nhermes-zipf-alpha = 0.2\nhermes-catalogue-size = 20\n"
    env = {"LOCUST_HERMES_SEED": "3"}
    options = ScenarioOptions.from_parsed(
        _parse("--hermes-instances", "4", env=env, config=config, aliases=aliases)
    )
    assert options.instances == 4  # command line
    assert options.seed == 3  # environment over config file and old name
    assert (options.zipf_alpha, options.catalogue_size) == (0.2, 20)  # config over old name
    assert options.backend == "memory"  # the old name still counts, over the default
    both = ScenarioOptions.from_parsed(_parse("--hermes-seed", "7", env=env))
    assert both.seed == 7


def test_the_old_variable_of_api_keys_is_kept_apart_from_the_apps() -> None:
    options = ScenarioOptions.from_parsed(_parse(aliases={"HERMES_API_KEYS_PER_RUN": "5"}))
    assert options.api_keys == ApiKeys(5)
    assert ScenarioOptions.from_parsed(_parse(aliases={"HERMES_API_KEYS": "sk-a"})).api_keys == (
        ApiKeys(1000)
    )


def test_urls_are_split_and_trimmed() -> None:
    options = ScenarioOptions.from_parsed(
        _parse(
            "--hermes-targets",
            " http://127.0.0.1:1/ ,,http://127.0.0.1:2",
            "--hermes-upstream-url",
            "http://127.0.0.1:3/",
        )
    )
    assert options.targets == ("http://127.0.0.1:1", "http://127.0.0.1:2")
    assert options.upstream_url == "http://127.0.0.1:3"


def test_a_choice_outside_the_list_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "invalid choice: 'mysql'" in _refusal(capsys, "--hermes-backend", "mysql")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--hermes-instances", "0"), "argument --hermes-instances: must be at least 1, got 0"),
        (("--hermes-instances", "two"), "argument --hermes-instances: invalid int value: 'two'"),
        (("--hermes-api-keys", "0"), "argument --hermes-api-keys: must be at least 1, got 0"),
        (("--hermes-requests", "-1"), "argument --hermes-requests: must be >= 0, got -1"),
        (
            ("--hermes-arrival-rate", "nan"),
            "argument --hermes-arrival-rate: must be a finite number >= 0, got nan",
        ),
        (
            ("--hermes-targets", "http://127.0.0.1:1,notaurl"),
            "argument --hermes-targets: 'notaurl' is not an http(s) URL: write it like "
            "http://127.0.0.1:8000",
        ),
        (
            ("--hermes-rate-limit", "lots"),
            "argument --hermes-rate-limit: RATE_LIMIT='lots' is not a rate limit; write it like "
            "'60/minute' or '5/second', or 'none' to turn it off",
        ),
        (
            ("--hermes-hit-header", "cf-cache-status="),
            "argument --hermes-hit-header: 'cf-cache-status=' is not NAME or NAME=VALUE: give "
            "the header that marks a hit, e.g. X-From-Cache (present = hit) or "
            "cf-cache-status=HIT (that value = hit)",
        ),
    ],
)
def test_a_bad_value_stops_the_parser_with_one_line(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], words: str
) -> None:
    assert _refusal(capsys, *args) == f"locust: error: {words}"


def _config_error(build: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        build()
    return str(caught.value)


@pytest.mark.parametrize(
    ("flag_name", "value", "as_the_run_checks"),
    [
        ("zipf-alpha", "-2", lambda: ZipfWorkload(alpha=-2.0)),
        ("catalogue-size", "0", lambda: ZipfWorkload(catalogue_size=0)),
        ("one-off-share", "2", lambda: ZipfWorkload(one_off_share=2.0)),
        ("upstream-latency", "bogus", lambda: parse_latency("bogus")),
    ],
)
def test_a_bad_workload_is_refused_in_the_words_of_hermes_bench_run(
    capsys: pytest.CaptureFixture[str], flag_name: str, value: str, as_the_run_checks: Any
) -> None:
    """`hermes-bench run` builds the workload (and parses the latency) to check its options:
    the same function, so the same sentence, whether the value came from the command line or
    the environment."""
    expected = f"locust: error: argument --hermes-{flag_name}: {_config_error(as_the_run_checks)}"
    assert _refusal(capsys, f"--hermes-{flag_name}", value) == expected
    variable = "LOCUST_HERMES_" + flag_name.upper().replace("-", "_")
    assert _refusal(capsys, env={variable: value}) == expected


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (ScenarioOptions(instances=0), "--hermes-instances must be at least 1, got 0"),
        (ScenarioOptions(zipf_alpha=-1.0), "Zipf alpha must be a finite number >= 0"),
        (ScenarioOptions(workload="trace"), "--hermes-workload trace needs --hermes-trace PATH"),
        (ScenarioOptions(upstream_url="upstream:8900"), "--hermes-upstream-url 'upstream:8900'"),
    ],
)
def test_check_names_what_cannot_work(options: ScenarioOptions, words: str) -> None:
    """The options a worker gets from its master are checked again, field by field."""
    assert _config_error(options.check).startswith(words)


def test_api_keys_a_number_made_up_or_the_keys_given() -> None:
    made_up = ApiKeys.parse("3")
    assert made_up == ApiKeys(3)
    assert {made_up.pick(random.Random(seed)) for seed in range(50)} == {
        "sk-hermes-bench-0",
        "sk-hermes-bench-1",
        "sk-hermes-bench-2",
    }
    given = ApiKeys.parse(" sk-live-a, ,sk-live-b ")
    assert given.count == 2
    assert {given.pick(random.Random(seed)) for seed in range(50)} == {"sk-live-a", "sk-live-b"}
    assert "sk-live" not in repr(given) and "sk-live" not in str(given)  # secrets
    options = ScenarioOptions.from_parsed(_parse("--hermes-api-keys", "sk-live-a,sk-live-b"))
    assert options.api_keys == given and "sk-live" not in repr(options)
    built = dataclasses.replace(ScenarioOptions(), api_keys=1)  # type: ignore[arg-type]
    assert built.api_keys == ApiKeys(1)  # a number, as code building options gives it


@pytest.mark.parametrize(
    ("spec", "sent", "outcome"),
    [
        # X-Cache alone, the default: its value is the outcome; no header, no outcome.
        ("X-Cache", "HIT", "HIT"),
        ("X-Cache", "BYPASS", "BYPASS"),
        ("X-Cache", None, None),
        ("x-cache", "", None),
        # NAME=VALUE: that value (any case) is a hit, another a miss, none no outcome.
        ("cf-cache-status=HIT", "hit", "HIT"),
        ("cf-cache-status=HIT", "DYNAMIC", "MISS"),
        ("cf-cache-status=HIT", None, None),
        ("X-Cache=HIT", "MISS", "MISS"),
        # NAME alone: present is a hit, absent a miss.
        ("X-From-Cache", "1", "HIT"),
        ("X-From-Cache", "", "HIT"),
        ("X-From-Cache", None, "MISS"),
    ],
)
def test_a_hit_header_says_hit_miss_or_nothing(spec: str, sent: str | None, outcome: str) -> None:
    assert parse_hit_header(spec).outcome(sent) == outcome


def test_the_hit_header_is_looked_up_in_lower_case() -> None:
    assert parse_hit_header(" CF-Cache-Status = HIT ").name == "cf-cache-status"
    options = ScenarioOptions.from_parsed(_parse(env={"LOCUST_HERMES_HIT_HEADER": "X-From-Cache"}))
    assert options.hit_header == "X-From-Cache"
    assert ScenarioOptions().hit_header == "X-Cache"


@pytest.mark.parametrize("spec", ["", "=HIT", "x cache=HIT", "X-Cache:HIT", "ä=1"])
def test_a_malformed_hit_header_is_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="--hermes-hit-header"):
        parse_hit_header(spec)
