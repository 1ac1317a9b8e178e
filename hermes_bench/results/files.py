"""results.json on disk: written atomically after every cell, read back with one validation."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hermes_bench.errors import ConfigError
from hermes_bench.redaction import redact_text
from hermes_bench.results.model import Results
from hermes_bench.results.vocabulary import RESULTS_SCHEMA

_ERRORS_SHOWN = 5


class ResultsFileError(ConfigError):
    """A results file that cannot be read: not JSON, another schema, or fields of wrong types."""


def results_json(results: Results) -> str:
    """The results as results.json text, secrets redacted in one last pass over the whole text."""
    return redact_text(json.dumps(results.model_dump(mode="json", by_alias=True), indent=1))


def write_results(path: Path, results: Results) -> None:
    """Write atomically (temp file + rename), so a crash never leaves half a results.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = results_json(results)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_results(path: Path) -> Results:
    """Load and validate a results.json; ResultsFileError says what is wrong and where."""
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
    return results_from_data(data, source=str(path))


def results_from_data(data: Any, source: str = "results") -> Results:
    """Validate parsed JSON as Results; ResultsFileError lists the first fields at fault."""
    schema = data.get("schema") if isinstance(data, dict) else None
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
