"""A real run given secrets every way a user gives them: none reaches any file or stream.

The Redis password in HERMES_BENCH_REDIS_URL, an OpenAI key, a password and a DSN with
userinfo in --target-env: every file under the output folder (results, report, JUnit, cell
and process logs, Locust's CSVs) and both streams are searched for each secret's text.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hermes_bench.stack.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.e2e

REDIS_PASSWORD = "redis-pw-4f1c9a"
OPENAI_KEY = "sk-live-8d2e7b1f0a9c"
DB_PASSWORD = "db-passwd-71e3aa"
DSN_PASSWORD = "dsn-pw-c0ffee"


def test_no_secret_reaches_any_output(tmp_path: Path) -> None:
    output = tmp_path / "out"
    with EmbeddedRedis(0, password=REDIS_PASSWORD) as redis:
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        env["HERMES_BENCH_REDIS_URL"] = redis.url
        result = subprocess.run(
            [sys.executable, "-m", "hermes_bench", "run", "--cells", "cache",
             "--backends", "redis", "--requests", "80", "--output", str(output),
             "--junit", str(output / "junit.xml"),
             "--target-env", f"OPENAI_API_KEY={OPENAI_KEY}",
             "--target-env", f"DB_PASSWD={DB_PASSWORD}",
             "--target-env", f"MY_DSN=postgres://app:{DSN_PASSWORD}@db.internal/hermes"],
            capture_output=True, text=True, timeout=240, env=env,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    files = [p for p in output.rglob("*") if p.is_file()]
    assert any(p.name == "results.json" for p in files) and any(p.suffix == ".log" for p in files)
    streams = {"stdout": result.stdout, "stderr": result.stderr}
    texts = {str(p): p.read_bytes().decode("utf-8", "replace") for p in files} | streams
    for secret in (REDIS_PASSWORD, OPENAI_KEY, DB_PASSWORD, DSN_PASSWORD):
        leaks = [where for where, text in texts.items() if secret in text]
        assert not leaks, f"{secret} in {leaks}"
