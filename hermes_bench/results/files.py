"""results.json on disk: written atomically after every cell, read back with one validation;
the run folders around it and the `latest` link to the newest."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hermes_bench.errors import ConfigError
from hermes_bench.input_files import file_problem
from hermes_bench.redaction import redact_text, redact_values
from hermes_bench.results.model import Results
from hermes_bench.results.vocabulary import RESULTS_SCHEMA

_ERRORS_SHOWN = 5
RESULTS_NAME = "results.json"
LATEST_NAME = "latest"  # in an output folder: a link to its newest run folder


class ResultsFileError(ConfigError):
    """A results file that cannot be read: not JSON, another schema, or fields of wrong types."""


def results_json(results: Results) -> str:
    """The results as results.json text, secrets redacted in one last pass over the whole text."""
    return redact_text(json.dumps(results.model_dump(mode="json", by_alias=True), indent=1))


def write_results(path: Path, results: Results) -> None:
    """Write atomically (temp file + rename), so a crash never leaves half a results.json."""
    write_text_atomically(path, results_json(results))


def write_text_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file renamed over it (parents created).

    The file gets the mode any new file gets (0666 less the umask, 0644 as a rule), like the
    report beside it: nothing in it is secret, secrets are redacted before they are written,
    and the values of secret settings this process was given are hidden here once more.
    """
    text = redact_values(text)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # os.open, not tempfile.mkstemp: mkstemp makes the file 0600 whatever the umask says.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def latest_problem(output: Path) -> str | None:
    """Why `latest` in the output folder cannot become a link to a run, or None."""
    link = output / LATEST_NAME
    if link.exists() and not link.is_symlink():
        return (
            f"{link} exists and is not a link: move it away, hermes-bench keeps a link there "
            "to the newest run"
        )
    return None


def point_latest(run_dir: Path) -> Path:
    """Make `latest` beside `run_dir` a link to it, replaced atomically; returns the link.

    The link is relative (`latest -> run-...`), so the output folder can be moved or archived.
    """
    link = run_dir.parent / LATEST_NAME
    problem = latest_problem(run_dir.parent)
    if problem is not None:
        raise ResultsFileError(problem)
    tmp = link.with_name(f".{LATEST_NAME}.{secrets.token_hex(4)}")
    os.symlink(run_dir.name, tmp, target_is_directory=True)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return link


def find_results(path: Path) -> Path:
    """The results.json `path` names: the file itself, a run's folder holding one, or an output
    folder whose `latest` link leads to one. ResultsFileError says what was found instead."""
    path = Path(path)
    if not path.exists():
        raise ResultsFileError(f"{path}: no such results file or folder")
    if not path.is_dir():
        return path
    for candidate in (path / RESULTS_NAME, path / LATEST_NAME / RESULTS_NAME):
        if candidate.is_file():
            return candidate
    runs = sorted(p.parent.name for p in path.glob(f"run-*/{RESULTS_NAME}"))
    hint = (
        f"it holds runs ({', '.join(runs[-3:])}): give one of them"
        if runs
        else "give the folder of a run (reports/run-...) or its results.json"
    )
    raise ResultsFileError(f"{path} holds no {RESULTS_NAME} and no {LATEST_NAME}/: {hint}")


def read_results(path: Path) -> Results:
    """Load and validate a results.json; ResultsFileError says what is wrong and where."""
    problem = file_problem(Path(path))
    if problem is not None and not problem.startswith("no such file"):
        raise ResultsFileError(f"{path}: {problem}")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsFileError(f"{path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ResultsFileError(
            f"{path} is not JSON ({exc}); is it a hermes-bench results.json?"
        ) from None
    except RecursionError:
        raise ResultsFileError(
            f"{path} nests its JSON deeper than Python reads; no results file does"
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ResultsFileError(f"{path}: a value no results file has ({exc})") from None
    return results_from_data(data, source=str(path))


def results_from_data(data: Any, source: str = "results") -> Results:
    """Validate parsed JSON as Results; ResultsFileError lists the first fields at fault."""
    if not isinstance(data, dict):
        raise ResultsFileError(
            f"{source} is not a hermes-bench results file: a JSON object with "
            f'"schema": {RESULTS_SCHEMA!r} was expected, not a {type(data).__name__}'
        )
    schema = data.get("schema")
    if schema != RESULTS_SCHEMA:
        raise ResultsFileError(
            f"{source} has schema {schema!r}; this hermes-bench reads {RESULTS_SCHEMA!r}"
        )
    try:
        return Results.model_validate(data)
    except ValidationError as exc:
        raise ResultsFileError(f"{source} is not a valid results file: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    shown = [
        f"{'.'.join(str(part) for part in error['loc']) or 'top level'}: {error['msg']}"
        + (f" (got {_short(error['input'])})" if error["type"] != "missing" else "")
        for error in errors[:_ERRORS_SHOWN]
    ]
    more = f"; and {len(errors) - _ERRORS_SHOWN} more" if len(errors) > _ERRORS_SHOWN else ""
    return "; ".join(shown) + more


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
