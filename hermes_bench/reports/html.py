"""One self-contained HTML report: claims and verdicts, plots inline, cells, configuration.

Opens offline: no external CSS, scripts, fonts or images; plots are data: URIs. Every text is
escaped, and the finished page goes through redaction once more.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hermes_bench.redaction import redact_text
from hermes_bench.reports import plots
from hermes_bench.reports.palette import verdict_colour
from hermes_bench.reports.terminal import verdict_counts

NO_DATA = "no data"


@dataclass(frozen=True)
class PlotSpec:
    """One plot of the report: how it is made, what it shows, which cell kinds feed it."""

    slug: str
    title: str
    render: Callable[[dict[str, Any]], bytes | None]
    alt: str
    caption: str
    kinds: tuple[str, ...]


PLOTS = (
    PlotSpec(
        "latency-cdf",
        "Response time, cache path",
        plots.latency_cdf,
        "Cumulative distribution of cache-path response time per backend, hits and misses",
        "Response time of the cache path, single instance: share of requests answered within "
        "each time (log axis). Solid: cache hits; dashed: misses (upstream call included).",
        ("cache",),
    ),
    PlotSpec(
        "hit-rate",
        "Hit rate over time",
        plots.hit_rate_over_time,
        "Cache hit rate per second for each cache cell",
        "HIT / (HIT + MISS + BYPASS) each second, from the X-Cache headers; dotted lines: the "
        "ideal hit rate of the very request sequence that ran (every repeat a hit).",
        ("cache",),
    ),
    PlotSpec(
        "upstream-calls",
        "Upstream calls",
        plots.upstream_calls,
        "Requests to the cache, OpenAI calls at the fake upstream and distinct prompts per cell",
        "Requests that reached the cache, calls counted where they arrive (the fake upstream: "
        "ground truth) and distinct prompts (the fewest calls any cache could make).",
        ("cache",),
    ),
    PlotSpec(
        "admitted-vs-limit",
        "Admitted vs limit",
        plots.admitted_vs_limit,
        "Distribution of requests admitted per rate-limit window against the limit",
        "Each burst pushes one fresh key past its limit within one window; bars right of the "
        "dashed limit line are windows where more requests got through than allowed.",
        ("ratelimit",),
    ),
    PlotSpec(
        "lru-bound",
        "Hit rate against cache size",
        plots.lru_bound,
        "LRU hit rate of the run's request sequence against cache size, with achieved hit rates",
        "The very sequence a cache cell drew, replayed through an LRU cache of each size (from "
        "stack distances): no cache of that size can do better. Horizontal lines: what each "
        "cell achieved; dotted: the ideal hit rate (1 - distinct / requests).",
        ("cache",),
    ),
    PlotSpec(
        "sessions-after-restart",
        "Sessions after restart",
        plots.sessions_after_restart,
        "Share of sessions intact before and after restarting every target instance",
        "Sessions created, then every target instance restarted: light bars before, solid bars "
        "after the restart.",
        ("restart",),
    ),
)

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
 max-width:1100px;margin:0 auto;padding:16px 24px 48px;background:#fff}
h1{font-size:25px;margin:8px 0 4px}h2{font-size:21px;margin:34px 0 8px;
 border-bottom:1px solid #d0d7de;padding-bottom:4px}h3{font-size:17px;margin:20px 0 6px}
h4{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#57606a;margin:10px 0 2px}
p{margin:6px 0}nav a{margin-right:14px}.meta{color:#57606a}
code{font:13px ui-monospace,Menlo,Consolas,monospace}
table{border-collapse:collapse;margin:6px 0;width:100%}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}table.kv th{width:40%;font-weight:500}
.verdict{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;
 font-weight:600;white-space:nowrap;font-size:13px;vertical-align:middle}
.banner{padding:10px 14px;border-radius:6px;margin:10px 0;font-weight:600}
.banner.interrupted{background:#fff1e5;border:2px solid #c62828;color:#8a1c1c;font-size:17px}
.banner.running{background:#fff8c5;border:1px solid #b26a00}
.status-failed{color:#c62828;font-weight:600}.nodata{color:#57606a;font-style:italic}
section.claim{border-left:4px solid #d0d7de;padding:2px 0 6px 14px;margin:22px 0}
.columns{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:0 24px}
figure{margin:18px 0 30px}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:14px;max-width:900px}.counts span{margin-right:14px}
"""
_NAV = (
    '<nav><a href="#claims">Claims</a><a href="#plots">Plots</a>'
    '<a href="#claim-details">Claims in detail</a><a href="#cells">Cells</a>'
    '<a href="#configuration">Run configuration</a></nav>'
)


def _text(value: Any) -> str:
    """Redacted, then HTML-escaped: escaping never splits a secret out of redaction's sight."""
    return html.escape(redact_text(str(value)))


def _anchor(prefix: str, name: Any) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_-]", "-", str(name))


def _format_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def _format_time(epoch_s: Any) -> str:
    if not isinstance(epoch_s, int | float) or isinstance(epoch_s, bool):
        return "—"
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _format_duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def _verdict(verdict: Any) -> str:
    colour = verdict_colour(str(verdict))
    return f'<span class="verdict" style="background:{colour}">{_text(verdict)}</span>'


def _kv_table(data: Any) -> str:
    if not isinstance(data, dict) or not data:
        return f'<p class="nodata">{NO_DATA}</p>'
    rows = "".join(
        f"<tr><th>{_text(key)}</th><td>{_text(_format_value(value))}</td></tr>"
        for key, value in data.items()
    )
    return f'<table class="kv">{rows}</table>'


def _table(headers: Iterable[str], rows: Iterable[str]) -> str:
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _header(results: dict[str, Any]) -> str:
    run = results.get("run") or {}
    status = str(run.get("status", "unknown"))
    parts = [
        f"<h1>hermes-bench report: run <code>{_text(run.get('id', '—'))}</code></h1>",
        f'<p class="meta">profile <strong>{_text(run.get("profile", "—"))}</strong> · '
        f"status <strong>{_text(status)}</strong> · wall time "
        f"{_text(_format_duration(run.get('wall_s')))} · started "
        f"{_text(_format_time(run.get('started_at')))} · ended "
        f"{_text(_format_time(run.get('ended_at')))}</p>",
    ]
    if status == "interrupted":
        parts.append(
            '<div class="banner interrupted" role="alert">This run was interrupted: cells that '
            "did not finish are missing or failed, and verdicts rest on partial data.</div>"
        )
    elif status != "complete":
        parts.append(
            f'<div class="banner running">Run status is “{_text(status)}”: the results may be '
            "incomplete.</div>"
        )
    return f"<header>{''.join(parts)}</header>"


def _claims_table(claims: list[dict[str, Any]], results: dict[str, Any]) -> str:
    if not claims:
        return f'<h2 id="claims">Claims</h2><p class="nodata">{NO_DATA}: no claims evaluated</p>'
    counts = " ".join(f"<span>{_verdict(v)} {n}</span>" for v, n in verdict_counts(results).items())
    rows = (
        f'<tr><td><a href="#{_anchor("claim-", c.get("id"))}">{_text(c.get("id", "?"))}</a></td>'
        f"<td>{_text(c.get('guide', ''))}</td><td>{_verdict(c.get('verdict', '?'))}</td>"
        f"<td>{_text(c.get('summary', ''))}</td></tr>"
        for c in claims
    )
    table = _table(("id", "the guide says", "verdict", "what was measured"), rows)
    return f'<h2 id="claims">Claims</h2><p class="counts">{counts}</p>{table}'


def _claim_section(claim: dict[str, Any], kinds_by_cell: dict[str, str]) -> str:
    cells = [str(c) for c in claim.get("cells") or []]
    cell_links = ", ".join(
        f'<a href="#{_anchor("cell-", c)}"><code>{_text(c)}</code></a>' for c in cells
    )
    kinds = {kinds_by_cell.get(c) for c in cells}
    plot_links = ", ".join(
        f'<a href="#plot-{p.slug}">{_text(p.title)}</a>' for p in PLOTS if kinds & set(p.kinds)
    )
    notes = claim.get("notes") or []
    notes_html = (
        "<ul>" + "".join(f"<li>{_text(n)}</li>" for n in notes) + "</ul>"
        if notes
        else '<p class="nodata">none</p>'
    )
    return (
        f'<section class="claim" id="{_anchor("claim-", claim.get("id"))}">'
        f"<h3>{_text(claim.get('id', '?'))}: {_text(claim.get('title', ''))} "
        f"{_verdict(claim.get('verdict', '?'))}</h3>"
        f"<p><strong>The guide says:</strong> “{_text(claim.get('guide', ''))}”</p>"
        f"<p><strong>How it is measured:</strong> {_text(claim.get('reading', ''))}</p>"
        f"<p><strong>Result:</strong> {_text(claim.get('summary', ''))}</p>"
        f'<div class="columns"><div><h4>Figures</h4>{_kv_table(claim.get("figures"))}</div>'
        f"<div><h4>Conditions</h4>{_kv_table(claim.get('conditions'))}</div></div>"
        f"<h4>Notes</h4>{notes_html}"
        f"<p><strong>Cells used:</strong> {cell_links or NO_DATA}</p>"
        + (f"<p><strong>Plots:</strong> {plot_links}</p>" if plot_links else "")
        + "</section>"
    )


def _plot_figure(spec: PlotSpec, png: bytes | None) -> str:
    title = f"<h3>{_text(spec.title)}</h3>"
    caption = f"<figcaption>{_text(spec.caption)}</figcaption>"
    if png is None:
        body = f'<p class="nodata" id="plot-{spec.slug}">{NO_DATA}</p>'
    else:
        data = base64.b64encode(png).decode("ascii")
        body = (
            f'<img id="plot-{spec.slug}" alt="{_text(spec.alt)}" width="900" '
            f'src="data:image/png;base64,{data}">'
        )
    return f"<figure>{title}{body}{caption}</figure>"


def _cells_table(cells: list[dict[str, Any]]) -> str:
    if not cells:
        return f'<h2 id="cells">Cells</h2><p class="nodata">{NO_DATA}: no cells ran</p>'
    rows = []
    for c in cells:
        status = str(c.get("status", "?"))
        status_class = ' class="status-failed"' if status != "ok" else ""
        rows.append(
            f'<tr id="{_anchor("cell-", c.get("id"))}"><td><code>{_text(c.get("id", "?"))}'
            f"</code></td><td>{_text(c.get('kind', ''))}</td><td>{_text(c.get('backend', ''))}"
            f"</td><td>{_text(c.get('instances', ''))}</td><td{status_class}>{_text(status)}"
            f"</td><td>{_text(c.get('error') or '')}</td></tr>"
        )
    table = _table(("id", "kind", "backend", "instances", "status", "error"), rows)
    return f'<h2 id="cells">Cells</h2>{table}'


def _configuration(run: dict[str, Any]) -> str:
    return (
        '<h2 id="configuration">Run configuration</h2>'
        f"<h3>Options</h3>{_kv_table(run.get('options'))}"
        f'<div class="columns"><div><h3>Machine</h3>{_kv_table(run.get("machine"))}</div>'
        f"<div><h3>Versions</h3>{_kv_table(run.get('versions'))}</div></div>"
    )


def render_html(results: dict[str, Any]) -> str:
    """The whole report as one HTML page."""
    run = results.get("run") or {}
    claims = [c for c in results.get("claims") or [] if isinstance(c, dict)]
    cells = [c for c in results.get("cells") or [] if isinstance(c, dict)]
    kinds_by_cell = {str(c.get("id")): str(c.get("kind")) for c in cells}
    sections = [
        _header(results),
        _NAV,
        _claims_table(claims, results),
        '<h2 id="plots">Plots</h2>',
        *(_plot_figure(spec, spec.render(results)) for spec in PLOTS),
        '<h2 id="claim-details">Claims in detail</h2>',
        *(_claim_section(c, kinds_by_cell) for c in claims),
        _cells_table(cells),
        _configuration(run),
        '<footer><p class="meta">Written by hermes-bench. Credentials in URLs and keys are '
        "redacted.</p></footer>",
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>hermes-bench report {_text(run.get('id', ''))}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(sections)}</body></html>\n"
    )
    # Last pass over the whole page: whatever slipped past the per-field redaction.
    return redact_text(page)


def write_report(results: dict[str, Any], path: Path) -> Path:
    """Write the HTML report to `path` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(results), encoding="utf-8")
    return path
