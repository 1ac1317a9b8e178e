"""Options from a TOML file: `[tool.hermes-bench]` in ./pyproject.toml, or `--config FILE`.

`run`'s options sit at the top of the table, `report`'s and `compare`'s in sub-tables of those
names. A key is a long option without its dashes (`fail-on`, or `fail_on`), its value what the
option takes: a string or number, true/false for a flag, a list for a repeatable option (or a
comma-separated one such as `backends`). Precedence, highest first: the command line, the
environment (HERMES_BENCH_REDIS_URL), the file, the defaults.
"""

from __future__ import annotations

import argparse
import difflib
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hermes_bench.errors import ConfigError
from hermes_bench.input_files import file_problem

PYPROJECT = "pyproject.toml"
TOOL_TABLE = "hermes-bench"  # [tool.hermes-bench]
COMMANDS = ("run", "report", "compare")  # the commands that read a config file
# Options a file cannot set: --config would name another file; help is not an option.
_NOT_FROM_FILE = frozenset({"help", "config"})
# Settings that may also come from the environment: (command, dest) -> variable.
ENVIRONMENT: Mapping[tuple[str, str], str] = {("run", "redis_url"): "HERMES_BENCH_REDIS_URL"}


@dataclass(frozen=True)
class ConfigFile:
    """The hermes-bench table of one TOML file, and how to name it in a message."""

    path: Path
    table: dict[str, Any]
    label: str


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """--config FILE on a command that reads a config file."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"read options from this TOML file instead of [tool.{TOOL_TABLE}] in "
        f"./{PYPROJECT}; the command line wins over it",
    )


def load_config(explicit: Path | None, cwd: Path) -> ConfigFile | None:
    """The file --config names, else ./pyproject.toml's [tool.hermes-bench]; None if neither."""
    if explicit is None:
        path = cwd / PYPROJECT
        if not path.is_file():
            return None
        data = _read_toml(path)
        table = data.get("tool", {}).get(TOOL_TABLE) if isinstance(data.get("tool"), dict) else None
        if table is None:
            return None
        return ConfigFile(path, _table(table, path), f"{path} [tool.{TOOL_TABLE}]")
    path = explicit
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    data = _read_toml(path)
    tool = data.get("tool")
    if path.name == PYPROJECT or (isinstance(tool, dict) and TOOL_TABLE in tool):
        # A pyproject.toml of its own: only its hermes-bench table is ours.
        if not isinstance(tool, dict) or TOOL_TABLE not in tool:
            raise ConfigError(f"--config {path}: it has no [tool.{TOOL_TABLE}] table")
        return ConfigFile(path, _table(tool[TOOL_TABLE], path), f"{path} [tool.{TOOL_TABLE}]")
    return ConfigFile(path, data, str(path))


def _read_toml(path: Path) -> dict[str, Any]:
    problem = file_problem(path)
    if problem is not None:
        raise ConfigError(f"{path}: {problem}")
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except (RecursionError, UnicodeDecodeError, ValueError) as exc:  # nesting, bytes, numbers
        raise ConfigError(f"{path} is not valid TOML: {type(exc).__name__}") from None


def _table(value: Any, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: tool.{TOOL_TABLE} must be a table, [tool.{TOOL_TABLE}]")
    return value


def section_for(config: ConfigFile, command: str) -> tuple[dict[str, Any], str]:
    """The keys of `command` in the file and the label of their table: run's at the top,
    the others' in a sub-table named after the command."""
    if command == "run":
        other = {name for name in COMMANDS if isinstance(config.table.get(name), dict)}
        return {k: v for k, v in config.table.items() if k not in other}, config.label
    section = config.table.get(command, {})
    label = f"{config.label} {command} table"
    if not isinstance(section, dict):
        raise ConfigError(f"{config.label}: {command} must be a table of options")
    return section, label


def file_values(
    command: argparse.ArgumentParser, section: Mapping[str, Any], label: str
) -> dict[str, tuple[str, Any]]:
    """Each key of `section` as dest -> (key, the value the option would parse to).

    ConfigError names the key and its table: an unknown key, a value of the wrong type.
    """
    by_name = {
        option[2:]: action
        for action in command._actions
        for option in action.option_strings
        if option.startswith("--") and action.dest not in _NOT_FROM_FILE
    }
    values: dict[str, tuple[str, Any]] = {}
    for key, value in section.items():
        action = by_name.get(key.replace("_", "-"))
        if action is None:
            close = difflib.get_close_matches(key.replace("_", "-"), list(by_name), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{label}: unknown key {key!r}: `hermes-bench {command.prog.split()[-1]}` has "
                f"no --{key.replace('_', '-')} option; {hint}keys are its long options "
                "without the dashes (see --help)"
            )
        values[action.dest] = (key, _converted(action, key, value, label))
    return values


def _converted(action: argparse.Action, key: str, value: Any, label: str) -> Any:
    where = f"{label}: {key} = {_shown(value)}"
    if action.nargs == 0:  # a flag
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: a flag takes true or false")
        return action.const if value else action.default
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_scalar(action, item, where) for item in items]
    if isinstance(value, list) and all(_is_scalar(item) for item in value):
        value = ",".join(str(item) for item in value)  # backends = ["redis", "memory"]
    return _scalar(action, value, where)


def _scalar(action: argparse.Action, value: Any, where: str) -> Any:
    if not _is_scalar(value):
        raise ConfigError(f"{where}: expected a string or a number")
    text = str(value)
    convert: Callable[[str], Any] | None = action.type if callable(action.type) else None
    try:
        converted = convert(text) if convert is not None else text
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        detail = str(exc) or f"not a {getattr(convert, '__name__', 'valid value')}"
        raise ConfigError(f"{where}: {detail}") from None
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ConfigError(f"{where}: choose from {choices}")
    return converted


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    return repr(value) if not isinstance(value, bool) else str(value).lower()


def given_on_command_line(
    build_parser: Callable[[], argparse.ArgumentParser], argv: Sequence[str]
) -> set[str]:
    """The dests `argv` sets itself: parsed again with every default suppressed."""
    parser = build_parser()
    for action in _all_actions(parser):
        if action.option_strings:
            action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                actions += _all_actions(sub)
    return actions


def command_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The sub-parser of `command`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            sub: argparse.ArgumentParser = action.choices[command]
            return sub
    raise KeyError(command)


def parse_command_line(
    build_parser: Callable[[], argparse.ArgumentParser],
    argv: Sequence[str],
    cwd: Path,
    environ: Mapping[str, str],
) -> argparse.Namespace:
    """Parse `argv`, then fill what it left out from the environment and the config file.

    `args.sources` maps each dest set by other than a default to where it came from, for
    messages ("--redis-url", "HERMES_BENCH_REDIS_URL", "pyproject.toml [...] redis-url").
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    sources: dict[str, str] = {}
    args.sources = sources
    if args.command not in COMMANDS:
        return args
    given = given_on_command_line(build_parser, argv)
    command = command_parser(parser, args.command)
    for action in command._actions:
        if action.dest in given and action.option_strings:
            sources[action.dest] = max(action.option_strings, key=len)
    config = load_config(args.config, cwd)
    if config is not None:
        section, label = section_for(config, args.command)
        for dest, (key, value) in file_values(command, section, label).items():
            if dest not in given:
                setattr(args, dest, value)
                sources[dest] = f"{label} {key}"
    for (name, dest), variable in ENVIRONMENT.items():
        if name == args.command and dest not in given and environ.get(variable):
            setattr(args, dest, environ[variable])
            sources[dest] = variable
    return args
