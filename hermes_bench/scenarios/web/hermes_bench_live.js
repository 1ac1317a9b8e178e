"use strict";
// Draws the figures, targets and charts of ./figures.json, polled as Locust polls its stats.
// Charts are inline SVG: each series a <g data-series=KEY> holding a polyline and a circle per
// point; the svg's data-t0, data-t1 and data-y-max and its rect.plot give the axes, so a
// point's value can be read back from its position.
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = Number(document.body.dataset.pollMs) || 2000;
  const HEIGHT = 260;
  const MARGIN = { left: 56, right: 24, top: 36, bottom: 28 };
  // Colours of Locust's own charts: green for what goes well, red and orange beside it.
  const CHARTS = [
    {
      id: "hit-rate",
      yMax: 100,
      lines: [
        { key: "hit_rate", label: "since start", color: "#00ca5a", scale: 100 },
        { key: "interval_hit_rate", label: "since the point before", color: "#ff9f00", scale: 100 },
      ],
    },
    {
      id: "calls",
      yMax: null,
      lines: [
        { key: "calls_avoided", label: "avoided", color: "#00ca5a", scale: 1 },
        { key: "upstream_calls", label: "made (at the upstream)", color: "#ff6d6d", scale: 1 },
      ],
    },
  ];
  let latest = JSON.parse(document.getElementById("initial-figures").textContent);

  function node(name, attrs, parent, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, value);
    if (text !== undefined) element.textContent = text;
    parent.appendChild(element);
    return element;
  }

  // The y axis: a round step (1, 2 or 5 times a power of ten, whole numbers: the values
  // are counts) and at most six of them; or fixedMax (100 %) in five steps.
  function niceScale(value, fixedMax) {
    if (fixedMax) return { max: fixedMax, step: fixedMax / 5 };
    if (!(value > 0)) return { max: 5, step: 1 };
    let power = Math.max(1, Math.pow(10, Math.floor(Math.log10(value / 6))));
    for (;;) {
      for (const step of [1, 2, 5]) {
        const count = Math.max(1, Math.ceil(value / (step * power)));
        if (count <= 6) return { max: count * step * power, step: step * power };
      }
      power *= 10;
    }
  }

  const round1 = (x) => Math.round(x * 10) / 10;
  const clock = (t) => new Date(t * 1000).toLocaleTimeString();

  function drawChart(spec, series) {
    const svg = document.getElementById("chart-" + spec.id);
    const width = Math.max(360, svg.parentElement.clientWidth);
    svg.setAttribute("width", width);
    svg.setAttribute("height", HEIGHT);
    svg.setAttribute("viewBox", "0 0 " + width + " " + HEIGHT);
    svg.replaceChildren();
    const values = [];
    for (const point of series)
      for (const line of spec.lines)
        if (point[line.key] !== null) values.push(point[line.key] * line.scale);
    const scale = niceScale(Math.max(0, ...values), spec.yMax);
    const yMax = scale.max;
    const t0 = series.length ? series[0].t : 0;
    const t1 = series.length > 1 ? series[series.length - 1].t : t0 + 1;
    const plot = {
      x: MARGIN.left,
      y: MARGIN.top,
      w: width - MARGIN.left - MARGIN.right,
      h: HEIGHT - MARGIN.top - MARGIN.bottom,
    };
    svg.dataset.t0 = t0;
    svg.dataset.t1 = t1;
    svg.dataset.yMax = yMax;
    node("rect", { class: "plot", x: plot.x, y: plot.y, width: plot.w, height: plot.h, fill: "none" }, svg);
    const steps = Math.round(yMax / scale.step);
    for (let i = 0; i <= steps; i++) {
      const y = plot.y + plot.h - (plot.h * i) / steps;
      const value = scale.step * i;
      node("line", { class: i ? "grid" : "axis", x1: plot.x, x2: plot.x + plot.w, y1: y, y2: y }, svg);
      const label = Number.isInteger(value) ? String(value) : value.toFixed(1);
      node("text", { x: plot.x - 8, y: y + 4, "text-anchor": "end" }, svg, label);
    }
    const legend = node("g", { class: "legend" }, svg);
    let x = width / 2 - spec.lines.length * 90;
    for (const line of spec.lines) {
      node("circle", { cx: x, cy: 14, r: 6, fill: line.color }, legend);
      const text = node("text", { x: x + 12, y: 18 }, legend, line.label);
      x += 32 + Math.max(120, text.getComputedTextLength());
    }
    if (!series.length) {
      node("text", { x: plot.x + plot.w / 2, y: plot.y + plot.h / 2, "text-anchor": "middle" }, svg,
        "no answers yet: points come once a second while the test runs");
      return;
    }
    const X = (t) => plot.x + ((t - t0) / (t1 - t0)) * plot.w;
    const Y = (v) => plot.y + plot.h * (1 - v / yMax);
    const ticks = Math.min(6, series.length);
    for (let i = 0; i < ticks; i++) {
      const t = ticks > 1 ? t0 + ((t1 - t0) * i) / (ticks - 1) : t0;
      const anchor = i === 0 ? "start" : i === ticks - 1 ? "end" : "middle";
      node("text", { x: X(t), y: plot.y + plot.h + 18, "text-anchor": anchor }, svg, clock(t));
    }
    for (const line of spec.lines) {
      const points = series
        .filter((point) => point[line.key] !== null)
        .map((point) => [round1(X(point.t)), round1(Y(point[line.key] * line.scale))]);
      const group = node("g", { "data-series": line.key }, svg);
      node("polyline", {
        points: points.map((p) => p.join(",")).join(" "),
        fill: "none",
        stroke: line.color,
        "stroke-width": 2,
      }, group);
      for (const [cx, cy] of points)
        node("circle", { class: "marker", cx: cx, cy: cy, r: 3, stroke: line.color, "stroke-width": 2 }, group);
    }
  }

  function show(key, value, note) {
    document.querySelector('[data-figure="' + key + '"]').textContent = value;
    const noteElement = document.querySelector('[data-note="' + key + '"]');
    if (noteElement && note !== undefined) noteElement.textContent = note;
  }

  const percent = (share) => (share * 100).toFixed(1) + " %";

  function drawFigures(figures) {
    if (figures === null) return;
    show("hit_rate", figures.hit_rate === null ? "–" : percent(figures.hit_rate),
      figures.hits + " HIT of " + figures.looked_up + " looked up (X-Cache headers)");
    show("requests", String(figures.requests));
    if (figures.upstream_calls === null) {
      show("calls_avoided", "–", "needs the upstream's count: " + figures.ground_truth_error);
      show("upstream_calls", "–", figures.ground_truth_error);
      return;
    }
    show("calls_avoided", String(figures.calls_avoided),
      figures.calls_avoided_share === null ? "" : percent(figures.calls_avoided_share) + " of the requests");
    show("upstream_calls", String(figures.upstream_calls), "counted where they arrive: the fake upstream");
  }

  function drawTable(data) {
    const table = document.getElementById("rows");
    if (table === null) return;
    table.replaceChildren();
    const head = table.createTHead().insertRow();
    for (const column of data.structure) head.appendChild(document.createElement("th")).textContent = column.title;
    const body = table.createTBody();
    for (const row of data.rows) {
      const tr = body.insertRow();
      for (const column of data.structure) tr.insertCell().textContent = row[column.key];
    }
  }

  function render(data) {
    drawFigures(data.figures);
    const targets = document.getElementById("targets");
    targets.replaceChildren(...data.targets.map((url) => {
      const item = document.createElement("li");
      item.textContent = url;
      return item;
    }));
    document.getElementById("upstream").textContent = data.upstream || "none known";
    for (const spec of CHARTS) drawChart(spec, data.series);
    drawTable(data);
    document.body.dataset.state = data.state;
    document.body.dataset.points = data.series.length;
    document.getElementById("status").textContent = data.taken_at
      ? "Figures of " + clock(data.taken_at) + ", test " + data.state
      : "No figures yet: they are read once a second while a test runs";
    if (window.parent !== window)  // embedded in Locust's tab: tell it our height
      window.parent.postMessage({ hermesBenchHeight: document.documentElement.scrollHeight }, location.origin);
  }

  async function poll() {
    try {
      const reply = await fetch("./figures.json", { cache: "no-store" });
      if (!reply.ok) throw new Error("HTTP " + reply.status);
      latest = await reply.json();
      render(latest);
    } catch (error) {
      document.getElementById("status").textContent = "no answer from Locust (" + error.message + "): retrying";
    }
    setTimeout(poll, POLL_MS);
  }

  window.addEventListener("resize", () => render(latest));
  window.addEventListener("storage", (event) => {  // Locust's theme toggle, in the parent page
    if (event.key === "theme") document.documentElement.classList.toggle("dark", event.newValue === "dark");
  });
  render(latest);
  setTimeout(poll, POLL_MS);
})();
