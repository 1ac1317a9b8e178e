"""The HTML report in a real browser (headless Chromium): it renders, logs no errors, shows plots.

Chromium is driven with its own command line (screenshot) and the DevTools protocol over
websocket-client (console errors, decoded images): no browser-automation package needed.
CI installs Chromium (.ci/run); set HERMES_BENCH_ALLOW_NO_BROWSER=1 to skip where it cannot be.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

# A sibling test module, importable because pytest puts tests/ on sys.path (rootdir conftest).
from test_report_render import sample_results

from hermes_bench.reports.html import write_report
from hermes_bench.reports.plot_specs import PLOTS
from hermes_bench.results.files import results_from_data

# Every test here starts a real Chromium.
pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
WINDOW_WIDTH, WINDOW_HEIGHT = 1200, 3000
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_TIMEOUT_S = 45.0


@pytest.fixture(scope="module")
def chromium() -> Path:
    """The Chromium binary; a missing one fails the test unless skipping is allowed."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} not found: install it with `apt-get install -y chromium`"
    if os.environ.get("HERMES_BENCH_ALLOW_NO_BROWSER") == "1":
        pytest.skip(f"{reason} (skipped: HERMES_BENCH_ALLOW_NO_BROWSER=1)")
    pytest.fail(f"{reason}, or set HERMES_BENCH_ALLOW_NO_BROWSER=1 to skip the browser tests")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = results_from_data(sample_results())
    return write_report(results, tmp_path_factory.mktemp("report") / "report.html")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the browser (it ends its helpers), then whatever is left of the session it leads."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # its own session: only helpers left behind
        os.killpg(process.pid, signal.SIGKILL)


def test_screenshot_is_a_png_of_the_window_width(
    chromium: Path, report: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "report.png"
    argv = [
        str(chromium),
        *_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        f"--window-size={WINDOW_WIDTH},{WINDOW_HEIGHT}",
        report.as_uri(),
    ]
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=_TIMEOUT_S)
    finally:
        _stop(process)
    assert shot.exists(), f"no screenshot; chromium said:\n{stderr.decode(errors='replace')}"
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG")
    assert struct.unpack(">I", png[16:20])[0] == WINDOW_WIDTH


class _DevTools:
    """A minimal DevTools-protocol client: commands by id, events kept for inspection."""

    def __init__(self, url: str) -> None:
        # Chromium refuses websocket clients that send an Origin it was not told to allow.
        self._ws = websocket.create_connection(url, timeout=_TIMEOUT_S, suppress_origin=True)
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        self._ws.close()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == self._next_id:
                assert "error" not in message, f"{method}: {message['error']}"
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(json.loads(self._ws.recv()))


@contextlib.contextmanager
def open_devtools(
    chromium: Path, tmp_path: Path, window: tuple[int, int] | None = None
) -> Iterator[_DevTools]:
    """A headless Chromium on a free DevTools port (of a `window` size, if given), connected
    to its blank page; stopped with its helpers on the way out."""
    profile = tmp_path / "profile"
    size = [f"--window-size={window[0]},{window[1]}"] if window else []
    argv = [
        str(chromium),
        *_FLAGS,
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",  # a free port, written to DevToolsActivePort
        *size,
        "about:blank",
    ]
    log = (tmp_path / "chromium.log").open("wb")
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + _TIMEOUT_S
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, (tmp_path / "chromium.log").read_text()
            assert time.monotonic() < deadline, "chromium wrote no DevToolsActivePort"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            targets = json.load(reply)
        page = next(t for t in targets if t.get("type") == "page")
        client = _DevTools(page["webSocketDebuggerUrl"])
        try:
            yield client
        finally:
            client.close()
    finally:
        _stop(process)
        log.close()


@pytest.fixture
def devtools(chromium: Path, tmp_path: Path) -> Iterator[_DevTools]:
    """A headless Chromium on a free DevTools port, connected to its blank page."""
    with open_devtools(chromium, tmp_path) as client:
        yield client


def _errors(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions and browser log errors, as readable lines."""
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(f"console: {[a.get('value') for a in params.get('args', [])]}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            described = details.get("exception", {}).get("description", "")
            errors.append(f"uncaught: {details.get('text')} {described}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"log: {entry.get('text')} {entry.get('url', '')}")
    return errors


def test_page_loads_without_errors_and_shows_every_plot(devtools: _DevTools, report: Path) -> None:
    for domain in ("Runtime", "Log", "Page"):
        devtools.call(f"{domain}.enable")
    devtools.call("Page.navigate", url=report.as_uri())
    devtools.wait_for("Page.loadEventFired")
    images = devtools.call(
        "Runtime.evaluate",
        expression="Array.from(document.images).map(i => "
        "({id: i.id, alt: i.alt, complete: i.complete, width: i.naturalWidth}))",
        returnByValue=True,
    )["result"]["value"]
    assert _errors(devtools.events) == []
    by_id = {image["id"]: image for image in images}
    # The run-wide plots and each claim's own (C12's cell failed: it has none).
    expected = [f"plot-{spec.slug}" for spec in PLOTS] + [
        f"plot-claim-{claim_id}" for claim_id in ("C1", "C2", "C3", "C4", "C6", "C7")
    ]
    assert sorted(by_id) == sorted(expected)
    for image in images:
        assert image["complete"] and image["width"] == 900, image
        assert image["alt"]
