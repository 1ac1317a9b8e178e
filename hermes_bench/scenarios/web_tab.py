"""The "hermes-bench" tab of Locust's web UI, and the live page it embeds.

Locust's extension points give a tab a table only (`extended_tabs`, `extended_tables`, rows in
`extended_stats`), drawn as text. The table holds the µs percentiles; the figures (hit rate,
OpenAI calls made and avoided), the targets and a chart over time are a page of ours at
./hermes-bench/ (inline SVG, fed by ./hermes-bench/figures.json, nothing from the internet),
which a small script puts into the tab and Download Data links to.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
from flask import Blueprint, Response, jsonify, render_template, request, send_from_directory
from locust.env import Environment
from locust.runners import STATE_RUNNING, STATE_SPAWNING, STATE_STOPPING

from hermes_bench.errors import ConfigError
from hermes_bench.http_json import HttpJsonError, get_json
from hermes_bench.redaction import redact_text, redact_url
from hermes_bench.scenarios.web_figures import TABLE_STRUCTURE
from hermes_bench.scenarios.web_live import REFRESH_S, LiveView

if TYPE_CHECKING:
    from hermes_bench.scenarios.run_context import HermesRun

log = logging.getLogger("hermes_bench")
TAB_KEY = "hermes-bench"
PAGE_PATH = "/hermes-bench"
GROUND_TRUTH_TIMEOUT_S = 2.0
POLL_MS = 2000  # the page's poll, as Locust's own UI polls its stats
ACTIVE_STATES = (STATE_SPAWNING, STATE_RUNNING, STATE_STOPPING)
WEB_FILES = Path(__file__).resolve().parent / "web"
TAB_SCRIPT = "hermes_bench_tab.js"
_SCRIPT_TAG = f'<script src="./hermes-bench/{TAB_SCRIPT}"></script>'


def add_web_tab(environment: Environment, run: HermesRun) -> None:
    """Register the tab, its table rows on every /stats/requests poll and the live page."""
    web_ui = environment.web_ui
    if web_ui is None or web_ui.app is None:
        return
    view = LiveView(run.metrics.live_rows, lambda: _read_ground_truth(environment, run))
    args = web_ui.template_args
    args.setdefault("extended_tabs", []).append({"title": TAB_KEY, "key": TAB_KEY})
    args.setdefault("extended_tables", []).append({"key": TAB_KEY, "structure": TABLE_STRUCTURE})
    args.setdefault("extended_csv_files", []).append(
        {"href": "./hermes-bench/", "title": "hermes-bench live figures and chart (page)"}
    )
    base = (getattr(environment.parsed_options, "web_base_path", None) or "").rstrip("/")
    pages = Blueprint(
        "hermes_bench", __name__, url_prefix=base + PAGE_PATH, template_folder=str(WEB_FILES)
    )

    def figures() -> dict[str, Any]:
        _refresh_soon(environment, run, view)
        return view.latest().to_json(
            targets=_targets(environment, run),
            upstream=redact_url(run.upstream_url(environment)) or None,
        )

    @pages.route("/")
    @web_ui.auth_required_if_enabled
    def page() -> str:
        return render_template(
            "hermes_bench_live.html",
            initial=figures(),
            embed=request.args.get("embed") == "1",
            poll_ms=POLL_MS,
        )

    @pages.route("/figures.json")
    @web_ui.auth_required_if_enabled
    def figures_json() -> Response:
        return jsonify(figures())

    @pages.route(f"/{TAB_SCRIPT}")
    @web_ui.auth_required_if_enabled
    def tab_script() -> Response:
        return send_from_directory(WEB_FILES, TAB_SCRIPT, mimetype="application/javascript")

    web_ui.app.register_blueprint(pages)

    @web_ui.app.after_request
    def extend_locust_pages(response: Response) -> Response:
        if response.status_code != 200:
            return response
        if request.endpoint == "locust.request_stats" and response.is_json:
            _refresh_soon(environment, run, view)
            extended = [{"key": TAB_KEY, "data": view.latest().rows}]
            response.set_data(json.dumps({**response.get_json(), "extended_stats": extended}))
        elif request.endpoint == "locust.index" and response.mimetype == "text/html":
            # The script that puts the live page into the tab: Locust's tabs hold tables only.
            html = response.get_data(as_text=True)
            response.set_data(html.replace("</body>", _SCRIPT_TAG + "</body>", 1))
        return response

    gevent.spawn(_keep_fresh, environment, run, view)


def _read_ground_truth(environment: Environment, run: HermesRun) -> dict[str, Any]:
    upstream = run.upstream_url(environment)
    if not upstream:
        raise ConfigError(
            "no fake upstream to count OpenAI calls: give --hermes-upstream-url with "
            "--host/--hermes-targets (the embedded stack sets it itself)"
        )
    try:
        return get_json(upstream + "/ground-truth", timeout_s=GROUND_TRUTH_TIMEOUT_S)
    except HttpJsonError as exc:
        raise HttpJsonError(redact_text(str(exc))) from exc


def _targets(environment: Environment, run: HermesRun) -> list[str]:
    try:
        return [redact_url(target) for target in run.targets(environment)]
    except ConfigError:
        return []


def _state(environment: Environment) -> str:
    runner = environment.runner
    return str(runner.state) if runner is not None else "missing"


def _refresh(environment: Environment, run: HermesRun, view: LiveView) -> None:
    try:
        state = _state(environment)
        view.refresh(state, active=state in ACTIVE_STATES, started_at=run.started_at)
    except Exception:  # a bug of ours must not end the refreshing nor break Locust's UI
        log.exception("the hermes-bench tab could not refresh its figures")


def _refresh_soon(environment: Environment, run: HermesRun, view: LiveView) -> None:
    """A refresh in the background when one is due: the page answers with the last state."""
    if view.claim_refresh():
        gevent.spawn(_refresh, environment, run, view)


def _keep_fresh(environment: Environment, run: HermesRun, view: LiveView) -> None:
    """While a test runs, a point a second for the chart, whether a page is open or not."""
    while True:
        if _state(environment) in ACTIVE_STATES and view.claim_refresh():
            _refresh(environment, run, view)
        gevent.sleep(REFRESH_S)
