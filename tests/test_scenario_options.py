"""--hermes-* options: one definition gives Locust's parser options and ScenarioOptions alike."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import configargparse
import pytest

from hermes_bench.errors import ConfigError
from hermes_bench.scenarios.options import (
    ScenarioOptions,
    add_options,
    flag,
    parse_hit_header,
)


class _LocustLikeParser(configargparse.ArgumentParser):  # type: ignore[misc]
    """Locust's parser is configargparse's plus include_in_web_ui; importing locust itself would
    monkey-patch this test process with gevent."""

    def add_argument(self, *args: Any, include_in_web_ui: bool = True, **kwargs: Any) -> Any:
        if args[0].startswith("--hermes-"):
            assert include_in_web_ui is False  # they stay off Locust's web form
        return super().add_argument(*args, **kwargs)


def _parser() -> _LocustLikeParser:
    parser = _LocustLikeParser(prog="locust")
    add_options(parser)
    return parser


def _parse(*args: str, env: dict[str, str] | None = None) -> argparse.Namespace:
    parsed, _ = _parser().parse_known_args(list(args), env_vars=env or {})
    return parsed


def _actions() -> dict[str, Any]:
    return {a.dest: a for a in _parser()._actions if a.dest.startswith("hermes_")}


def test_defaults_are_the_dataclass_defaults() -> None:
    from_locust = ScenarioOptions.from_parsed(_parse())
    assert from_locust == ScenarioOptions() == ScenarioOptions.from_parsed(None)
    assert from_locust.metrics_json == "reports/hermes-metrics.json"
    assert (from_locust.backend, from_locust.instances, from_locust.targets) == ("redis", 2, ())


def test_every_field_has_one_flag_with_an_env_twin() -> None:
    actions = _actions()
    names = [f.name for f in dataclasses.fields(ScenarioOptions)]
    assert sorted(actions) == sorted(f"hermes_{name}" for name in names)
    for name in names:
        action = actions[f"hermes_{name}"]
        assert action.option_strings == [flag(name)]
        assert action.env_var.startswith("HERMES_")
        assert action.help.endswith(f"[env {action.env_var}]")
    assert actions["hermes_api_keys"].env_var == "HERMES_API_KEYS_PER_RUN"
    assert actions["hermes_backend"].choices == ("redis", "memory")
    assert actions["hermes_workload"].choices == ("zipf", "trace")
    assert actions["hermes_instances"].type is int
    assert actions["hermes_zipf_alpha"].type is float


def test_help_shows_the_defaults_once_given() -> None:
    actions = _actions()
    assert "(default redis)" in actions["hermes_backend"].help
    assert "(default 0.0)" in actions["hermes_arrival_rate"].help
    assert "(default reports/hermes-metrics.json)" in actions["hermes_metrics_json"].help
    assert "(default )" not in actions["hermes_targets"].help  # empty defaults are not shown


def test_command_line_over_environment_over_default() -> None:
    env = {"HERMES_SEED": "5", "HERMES_ZIPF_ALPHA": "0.5", "HERMES_BACKEND": "memory"}
    from_env = ScenarioOptions.from_parsed(_parse(env=env))
    assert (from_env.seed, from_env.zipf_alpha, from_env.backend) == (5, 0.5, "memory")
    both = ScenarioOptions.from_parsed(_parse("--hermes-seed", "7", env=env))
    assert both.seed == 7 and both.zipf_alpha == 0.5


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
    with pytest.raises(SystemExit):
        _parse("--hermes-backend", "mysql")
    assert "invalid choice: 'mysql'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--hermes-instances", "0"), "--hermes-instances must be at least 1, got 0"),
        (("--hermes-api-keys", "0"), "--hermes-api-keys must be at least 1, got 0"),
        (("--hermes-requests", "-1"), "--hermes-requests must be >= 0, got -1"),
        (("--hermes-arrival-rate", "-2"), "--hermes-arrival-rate must be >= 0, got -2.0"),
        (("--hermes-workload", "trace"), "--hermes-workload trace needs --hermes-trace PATH"),
        (
            ("--hermes-hit-header", "cf-cache-status="),
            "--hermes-hit-header 'cf-cache-status=' is not NAME or NAME=VALUE: give the header "
            "that marks a hit, e.g. X-From-Cache (present = hit) or cf-cache-status=HIT (that "
            "value = hit)",
        ),
    ],
)
def test_options_that_cannot_work_name_the_option(args: tuple[str, ...], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ScenarioOptions.from_parsed(_parse(*args))
    assert str(caught.value) == words


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
    options = ScenarioOptions.from_parsed(_parse(env={"HERMES_HIT_HEADER": "X-From-Cache"}))
    assert options.hit_header == "X-From-Cache"
    assert ScenarioOptions().hit_header == "X-Cache"


@pytest.mark.parametrize("spec", ["", "=HIT", "x cache=HIT", "X-Cache:HIT", "ä=1"])
def test_a_malformed_hit_header_is_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="--hermes-hit-header"):
        parse_hit_header(spec)
