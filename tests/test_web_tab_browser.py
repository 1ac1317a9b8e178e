"""The hermes-bench tab of a real `locust -f locustfile.py` web UI: its JSON agrees with the
fake upstream's own count, and in headless Chromium the tab shows the figures, every target and
a chart whose points, read back from the SVG, are the JSON's series.

One bounded run (--hermes-requests) is started for the module and left to finish: once it has
stopped, the figures no longer change, so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import base64
import io
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest

# A sibling test module, importable because pytest puts tests/ on sys.path (rootdir conftest).
from test_report_browser import _DevTools, _errors, _stop, chromium, open_devtools  # noqa: F401

from hermes_bench.http_json import HttpJsonError, get_json
from hermes_bench.results.vocabulary import CHAT_SCENARIOS, REFUSED
from hermes_bench.scenarios.web_figures import ADMITTED_UNIT, MS
from hermes_bench.stack.ports import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfile.py")
REQUESTS = 150
START_TIMEOUT_S = 120.0
WINDOW_WIDTH, WINDOW_HEIGHT = 1400, 1600
# The page's chart colours (Locust's own): calls avoided and hit rate in green, calls made in red.
GREEN, RED = (0x00, 0xCA, 0x5A), (0xFF, 0x6D, 0x6D)


@dataclass(frozen=True)
class WebRun:
    """A Locust web UI whose bounded test has stopped, and the figures it settled on."""

    base_url: str
    figures: dict[str, Any]
    log: Path


def _settled(data: dict[str, Any]) -> bool:
    """True once the test has stopped and the series ends on the final figures."""
    if data["state"] != "stopped" or not data["series"] or data["figures"] is None:
        return False
    last, figures = data["series"][-1], data["figures"]
    keys = ("hits", "looked_up", "calls_avoided", "upstream_calls")
    return all(last[key] == figures[key] for key in keys)


@pytest.fixture(scope="module")
def web_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebRun]:
    folder = tmp_path_factory.mktemp("web-tab")
    port = free_port()
    command = [
        sys.executable, "-m", "locust", "-f", LOCUSTFILE, "CacheUser", "RateLimitUser",
        "--autostart", "-u", "2", "-r", "2", "--web-host", "127.0.0.1", "--web-port", str(port),
        "--hermes-backend", "memory", "--hermes-requests", str(REQUESTS),
        "--hermes-metrics-json", str(folder / "metrics.json"),
    ]  # fmt: skip
    log = folder / "locust.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        data: dict[str, Any] = {"state": "missing", "series": [], "figures": None}
        while not _settled(data):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"never settled: {data}\n{log.read_text()}"
            time.sleep(0.5)
            try:
                data = get_json(base_url + "/hermes-bench/figures.json", timeout_s=5)
            except HttpJsonError:
                continue  # the web UI is not up yet
        yield WebRun(base_url, data, log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _chat_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        if row["kind"] == "latency" and row["scenario"] in CHAT_SCENARIOS:
            counts[row["outcome"]] = counts.get(row["outcome"], 0) + row["count"]
    return counts


def test_figures_agree_with_the_rows_and_the_upstreams_own_count(web_run: WebRun) -> None:
    data = web_run.figures
    figures = data["figures"]
    counts = _chat_counts(data["rows"])
    hits = counts.get("HIT", 0)
    looked_up = hits + counts.get("MISS", 0) + counts.get("BYPASS", 0)
    requests = sum(n for outcome, n in counts.items() if outcome != REFUSED)
    assert hits > 0 and requests >= REQUESTS, (counts, web_run.log.read_text())
    assert (figures["hits"], figures["looked_up"]) == (hits, looked_up)
    assert figures["hit_rate"] == pytest.approx(hits / looked_up)
    assert figures["requests"] == requests
    # Ground truth read here, not through the tab: the stopped run makes no more calls.
    truth = get_json(data["upstream"] + "/ground-truth", timeout_s=10)
    assert figures["upstream_calls"] == truth["calls"] > 0
    assert figures["calls_avoided"] == requests - truth["calls"]
    assert figures["ground_truth_error"] is None


def test_every_target_of_the_run_is_listed(web_run: WebRun) -> None:
    targets = web_run.figures["targets"]
    assert len(targets) == 2, targets  # the embedded stack's two instances
    for target in targets:
        assert get_json(target + "/healthz", timeout_s=10)  # a target of this run, alive


def test_the_locust_table_has_latencies_in_ms_and_counts_as_counts(web_run: WebRun) -> None:
    stats = get_json(web_run.base_url + "/stats/requests", timeout_s=10)
    [table] = [t["data"] for t in stats["extended_stats"] if t["key"] == "hermes-bench"]
    assert table == web_run.figures["rows"]
    for row in table:
        assert row["unit"] == MS if row["kind"] == "latency" else row["unit"] != MS, row
        assert set(row) == {c["key"] for c in web_run.figures["structure"]}
    [window] = [row for row in table if row["kind"] == "count"]
    assert window["unit"] == ADMITTED_UNIT
    # Admitted requests per window: whole numbers of at least one, not a latency in ms.
    values = [window[k] for k in ("p50", "p90", "p99", "max")]
    assert all(isinstance(v, int) and v >= 1 for v in values), window
    with urllib.request.urlopen(web_run.base_url + "/", timeout=10) as reply:
        index = reply.read().decode()
    assert "hermes-bench/hermes_bench_tab.js" in index  # the script that embeds the live page


@pytest.fixture
def devtools(chromium: Path, tmp_path: Path) -> Iterator[_DevTools]:  # noqa: F811
    """A headless Chromium of the test's window size, connected to its blank page."""
    with open_devtools(chromium, tmp_path, (WINDOW_WIDTH, WINDOW_HEIGHT)) as client:
        yield client


def _evaluate(devtools: _DevTools, expression: str) -> Any:
    reply = devtools.call("Runtime.evaluate", expression=expression, returnByValue=True)
    assert "exceptionDetails" not in reply, reply
    return reply["result"].get("value")


# Everything the tab shows, read from the embedded page's DOM: figures, targets, and for each
# chart its axes (the plot rectangle, first and last time, top of the y axis) and the centre of
# every point drawn, per series.
_READ_TAB = """(() => {
  const frame = document.getElementById("hermes-bench-live");
  const doc = frame && frame.contentDocument;
  if (!doc || !doc.body || doc.body.dataset.state !== "stopped") return null;
  const text = (selector) => doc.querySelector(selector).textContent;
  const charts = {};
  for (const svg of doc.querySelectorAll("svg[id^=chart-]")) {
    const plot = svg.querySelector("rect.plot");
    const series = {};
    for (const group of svg.querySelectorAll("g[data-series]"))
      series[group.dataset.series] = Array.from(group.querySelectorAll("circle"),
        (c) => [Number(c.getAttribute("cx")), Number(c.getAttribute("cy"))]);
    charts[svg.id] = {
      plot: ["x", "y", "width", "height"].map((k) => Number(plot.getAttribute(k))),
      t0: Number(svg.dataset.t0), t1: Number(svg.dataset.t1), yMax: Number(svg.dataset.yMax),
      series: series,
    };
  }
  const table = document.querySelector(".MuiTableContainer-root");
  return {
    points: Number(doc.body.dataset.points),
    hitRate: text('[data-figure="hit_rate"]'),
    callsAvoided: text('[data-figure="calls_avoided"]'),
    upstreamCalls: text('[data-figure="upstream_calls"]'),
    targets: Array.from(doc.querySelectorAll("#targets li"), (li) => li.textContent),
    charts: charts,
    frameBeforeTable: !!table && !!(frame.compareDocumentPosition(table) & 4),
    tableText: table ? table.innerText : "",
    tableRows: table ? table.querySelectorAll("tbody tr").length : 0,
  };
})()"""


def _decode(chart: dict[str, Any], key: str) -> list[tuple[float, float]]:
    """(time, value) of each point of series `key`, from its position on the chart's axes."""
    x, y, width, height = chart["plot"]
    t0, t1, y_max = chart["t0"], chart["t1"], chart["yMax"]
    return [
        (t0 + (cx - x) / width * (t1 - t0), (1 - (cy - y) / height) * y_max)
        for cx, cy in chart["series"][key]
    ]


def _assert_drawn(
    chart: dict[str, Any], key: str, series: list[dict[str, Any]], scale: int
) -> None:
    expected = [(p["t"], p[key] * scale) for p in series if p[key] is not None]
    decoded = _decode(chart, key)
    assert len(decoded) == len(expected), (key, decoded, expected)
    _, _, width, height = chart["plot"]
    # Points are drawn to a tenth of a pixel: half a pixel either way is the tolerance.
    per_px_t = (chart["t1"] - chart["t0"]) / width
    per_px_v = chart["yMax"] / height
    for (t, value), (t_expected, value_expected) in zip(decoded, expected, strict=True):
        assert abs(t - t_expected) <= per_px_t / 2, (key, t, t_expected)
        assert abs(value - value_expected) <= per_px_v / 2, (key, value, value_expected)


def _pixels_near(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 24) -> int:
    difference = np.abs(image[:, :, :3].astype(int) - np.array(rgb)).max(axis=2)
    return int((difference <= tolerance).sum())


def test_the_tab_draws_the_figures_targets_and_chart_in_chromium(
    web_run: WebRun, devtools: _DevTools, tmp_path: Path
) -> None:
    for domain in ("Runtime", "Log", "Page"):
        devtools.call(f"{domain}.enable")
    devtools.call("Page.navigate", url=web_run.base_url + "/?tab=hermes-bench")
    devtools.wait_for("Page.loadEventFired")
    data = web_run.figures
    deadline = time.monotonic() + 45
    shown = None
    while shown is None or shown["points"] != len(data["series"]) or not shown["tableRows"]:
        assert time.monotonic() < deadline, f"the tab never showed the figures: {shown}"
        time.sleep(0.25)
        shown = _evaluate(devtools, _READ_TAB)
    assert _errors(devtools.events) == []

    figures = data["figures"]
    number, unit = shown["hitRate"].split()
    assert unit == "%" and float(number) == pytest.approx(figures["hit_rate"] * 100, abs=0.05)
    assert shown["callsAvoided"] == str(figures["calls_avoided"])
    assert shown["upstreamCalls"] == str(figures["upstream_calls"])
    assert shown["targets"] == data["targets"]
    # The live page sits above Locust's own table, which holds a row per scenario and outcome.
    assert shown["frameBeforeTable"] and shown["tableRows"] == len(data["rows"])
    assert ADMITTED_UNIT in shown["tableText"]
    hit_rate, calls = shown["charts"]["chart-hit-rate"], shown["charts"]["chart-calls"]
    assert hit_rate["yMax"] == 100
    _assert_drawn(hit_rate, "hit_rate", data["series"], scale=100)
    _assert_drawn(hit_rate, "interval_hit_rate", data["series"], scale=100)
    _assert_drawn(calls, "calls_avoided", data["series"], scale=1)
    _assert_drawn(calls, "upstream_calls", data["series"], scale=1)

    shot = base64.b64decode(devtools.call("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "hermes-bench-tab.png").write_bytes(shot)
    image = (matplotlib.image.imread(io.BytesIO(shot), format="png") * 255).round()
    assert image.shape[1] == WINDOW_WIDTH
    assert image[:, :, :3].std() > 10  # not a blank page
    # The chart's lines and markers, in their colours, are on screen.
    assert _pixels_near(image, GREEN) > 100 and _pixels_near(image, RED) > 50
