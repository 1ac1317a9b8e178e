"""Options from [tool.hermes-bench] in ./pyproject.toml or --config FILE: the command line wins
over the environment, which wins over the file, which wins over the defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hermes_bench.errors import ConfigError
from hermes_bench.harness.cli import build_parser, main
from hermes_bench.harness.config_file import parse_command_line

PYPROJECT = """\
[project]
name = "service"

[tool.hermes-bench]
requests = 500
threshold = ["redis.hit_rate>0.5", "redis.HIT p(95)<50ms"]
fail_on = "does not hold"
backends = ["redis", "memory"]
stream = true
redis-url = "redis://:from-file@127.0.0.1:6379/0"

[tool.hermes-bench.compare]
latency = "80%"

[tool.hermes-bench.report]
junit = "report-junit.xml"
"""


def _parse(tmp_path: Path, *argv: str, environ: dict[str, str] | None = None) -> argparse.Namespace:
    return parse_command_line(build_parser, list(argv), tmp_path, environ or {})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    return tmp_path


def test_the_file_fills_what_the_command_line_leaves_out(project: Path) -> None:
    args = _parse(project, "run", "--requests", "80", "--threshold", "memory.errors<1")
    assert args.requests == 80  # the command line wins
    assert args.threshold == ["memory.errors<1"]  # replaced, not added to the file's
    assert args.fail_on == ["does not hold"]  # one string for a repeatable option
    assert args.backends == "redis,memory" and args.stream is True
    assert args.users is None and args.profile == "quick"  # neither: the defaults
    assert args.sources["requests"] == "--requests"
    assert args.sources["fail_on"].endswith("[tool.hermes-bench] fail_on")


def test_environment_beats_the_file_and_the_command_line_beats_both(project: Path) -> None:
    env = {"HERMES_BENCH_REDIS_URL": "redis://:from-env@10.0.0.1:6379/0"}
    from_file = _parse(project, "run")
    assert from_file.redis_url == "redis://:from-file@127.0.0.1:6379/0"
    from_env = _parse(project, "run", environ=env)
    assert from_env.redis_url == env["HERMES_BENCH_REDIS_URL"]
    assert from_env.sources["redis_url"] == "HERMES_BENCH_REDIS_URL"
    given = _parse(project, "run", "--redis-url", "redis://cli:6379/0", environ=env)
    assert given.redis_url == "redis://cli:6379/0" and given.sources["redis_url"] == "--redis-url"


def test_other_commands_read_their_own_table(project: Path) -> None:
    compare = _parse(project, "compare", "a.json", "b.json")
    assert compare.latency == "80%" and compare.hit_rate == "5%"
    report = _parse(project, "report", "runs/")
    assert report.junit == "report-junit.xml" and report.results == "runs/"


def test_config_option_reads_a_file_of_its_own_instead(project: Path) -> None:
    own = project / "ci.toml"
    own.write_text('requests = 40\ncells = "cache"\n\n[compare]\nerrors = "3"\n')
    args = _parse(project, "run", "--config", str(own))
    assert args.requests == 40 and args.cells == "cache"
    assert args.threshold == []  # pyproject.toml is not read as well
    assert _parse(project, "compare", "a", "b", "--config", str(own)).errors == "3"


def test_a_pyproject_without_the_table_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.ruff]\nline-length = 9\n'
    )
    args = _parse(tmp_path, "run")
    assert args.requests is None and args.sources == {}


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("requets = 80", "unknown key 'requets': `hermes-bench run` has no --requets option; "
                         "did you mean 'requests'?"),
        ("config = 'other.toml'", "unknown key 'config'"),
        ("requests = 'many'", "requests = 'many': invalid literal for int()"),
        ("stream = 'yes'", "stream = 'yes': a flag takes true or false"),
        ("profile = 'huge'", "profile = 'huge': choose from"),
        ("threshold = [{ a = 1 }]", "expected a string or a number"),
        ("requests = 80\n[tool.hermes-bench.rum]\nx = 1", "unknown key 'rum'"),
    ],
)  # fmt: skip
def test_a_bad_key_is_one_message_naming_it(tmp_path: Path, table: str, expected: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.hermes-bench]\n{table}\n")
    with pytest.raises(ConfigError, match=r"pyproject\.toml") as caught:
        _parse(tmp_path, "run")
    assert expected in str(caught.value)


def test_the_command_exits_2_on_a_bad_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.hermes-bench]\nfail-onn = 'holds'\n")
    assert main(["run", "--output", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("hermes-bench run: error: ") and "unknown key 'fail-onn'" in line
    assert not (tmp_path / "out").exists()
    (tmp_path / "pyproject.toml").write_text("[tool.hermes-bench\n")
    assert main(["report", "x"]) == 2
    assert "pyproject.toml is not valid TOML" in capsys.readouterr().err
    missing = tmp_path / "none.toml"
    assert main(["compare", "a", "b", "--config", str(missing)]) == 2
    assert f"--config {missing}: no such file" in capsys.readouterr().err
