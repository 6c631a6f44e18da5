// The analytics page: fetch the report with the admin token, draw it as SVG and tables.
// No library and nothing from another origin (the page's CSP allows 'self' only).
"use strict";

const COLORS = { result: "#2e9d5b", transfer: "#3b7dd8", error: "#d9822b", exit: "#9aa3b5", abandoned: "#c9463d" };
const OUTCOMES = ["result", "transfer", "error", "exit", "abandoned"];
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const pct = (v) => (v === null || v === undefined ? "·" : (v * 100).toFixed(1) + "%");
const num = (v) => (v === null || v === undefined ? "·" : String(Math.round(v * 10) / 10));
const short = (v) => v.slice(0, 10);

function el(name, attrs = {}, text) {
  const node = name.startsWith("svg:") ? document.createElementNS(SVG, name.slice(4)) : document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function table(target, headers, rows) {
  target.replaceChildren();
  const head = el("tr");
  headers.forEach((h) => head.append(el("th", {}, h)));
  target.append(head);
  rows.forEach((cells) => {
    const tr = el("tr");
    cells.forEach((c) => {
      if (c && typeof c === "object") tr.append(el("td", { class: "suppressed", colspan: String(c.span) }, c.text));
      else tr.append(el("td", {}, c));
    });
    target.append(tr);
  });
}

function sessionCells(r) {
  const key = [r.day, r.channel, r.flow, short(r.version)];
  if (r.suppressed) return [...key, { span: 9, text: r.suppressed }];
  return [...key, num(r.contacts), num(r.result), num(r.error), num(r.transfer),
    num(r.abandoned + r.exit), pct(r.self_service_rate), pct(r.deflection),
    `${num(r.steps_median)} / ${num(r.steps_p95)}`, `${num(r.seconds_median)} / ${num(r.seconds_p95)}`];
}
const SESSION_HEADERS = ["day", "channel", "flow", "version", "contacts", "result", "error",
  "transfer", "abandoned+exit", "self-service", "deflection", "steps p50/p95", "secs p50/p95"];

function kpis(data) {
  const shown = data.totals.filter((r) => !r.suppressed);
  const sum = (k) => shown.reduce((a, r) => a + (r[k] || 0), 0);
  const contacts = sum("contacts");
  const answers = data.surveys.filter((s) => !s.suppressed);
  const n = answers.reduce((a, s) => a + s.answers, 0);
  const mean = n ? answers.reduce((a, s) => a + s.mean * s.answers, 0) / n : null;
  const tiles = [
    ["contacts", String(contacts)],
    ["self-service rate", contacts ? pct(sum("result") / contacts) : "·"],
    ["deflection", contacts ? pct(1 - sum("transfer") / contacts) : "·"],
    ["satisfaction (1-5)", mean === null ? "·" : mean.toFixed(2)],
  ];
  $("kpis").replaceChildren(...tiles.map(([label, value]) => {
    const tile = el("div", { class: "kpi", "data-kpi": label });
    tile.append(el("b", {}, value), el("span", {}, label));
    return tile;
  }));
}

function outcomesChart(data) {
  // Stacked bars: one per day, the outcomes of every row shown that day.
  const days = data.upstream.map((u) => u.day);
  const totals = days.map((d) => {
    const t = Object.fromEntries(OUTCOMES.map((o) => [o, 0]));
    data.rows.filter((r) => r.day === d && !r.suppressed).forEach((r) => OUTCOMES.forEach((o) => { t[o] += r[o] || 0; }));
    return t;
  });
  const max = Math.max(1, ...totals.map((t) => OUTCOMES.reduce((a, o) => a + t[o], 0)));
  const W = 720, H = 220, pad = 30, bw = Math.max(6, (W - pad * 2) / days.length - 6);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H + 24}`, role: "img", "aria-label": "outcomes per day" });
  svg.append(el("svg:line", { x1: pad, y1: H, x2: W - pad, y2: H, stroke: "#ccd" }));
  svg.append(el("svg:text", { x: 2, y: 12, "font-size": 10, fill: "#667" }, String(max)));
  days.forEach((d, i) => {
    const x = pad + i * ((W - pad * 2) / days.length) + 3;
    let y = H;
    OUTCOMES.forEach((o) => {
      const h = (totals[i][o] / max) * (H - 20);
      if (h > 0) {
        y -= h;
        const bar = el("svg:rect", { x, y, width: bw, height: h, fill: COLORS[o], class: `bar bar-${o}`, "data-day": d, "data-n": totals[i][o] });
        bar.append(el("svg:title", {}, `${d} ${o}: ${totals[i][o]}`));
        svg.append(bar);
      }
    });
    svg.append(el("svg:text", { x, y: H + 14, "font-size": 9, fill: "#667" }, d.slice(5)));
  });
  $("outcomes-chart").replaceChildren(svg);
  $("outcomes-legend").replaceChildren(...OUTCOMES.map((o) => {
    const s = el("span"); s.append(el("i", { class: `swatch-${o}` }), o); return s;
  }));
}

function funnels(data) {
  const target = $("funnels");
  target.replaceChildren();
  const groups = new Map();
  data.funnels.forEach((f) => {
    const key = `${f.channel} · ${f.flow} · ${short(f.version)}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(f);
  });
  for (const [key, states] of groups) {
    target.append(el("h3", {}, key));
    const shown = states.filter((s) => !s.suppressed).sort((a, b) => b.visits - a.visits);
    const max = Math.max(1, ...shown.map((s) => s.visits));
    const W = 720, row = 22, label = 150;
    const svg = el("svg:svg", { viewBox: `0 0 ${W} ${row * shown.length + 4}`, class: "funnel", role: "img", "aria-label": `funnel ${key}` });
    shown.forEach((s, i) => {
      const y = i * row + 2, w = ((W - label - 230) * s.visits) / max;
      svg.append(el("svg:text", { x: 0, y: y + 14, "font-size": 11 }, s.state));
      svg.append(el("svg:rect", { x: label, y, width: Math.max(1, w), height: row - 6, fill: "#3b7dd8", class: "funnel-bar", "data-state": s.state, "data-visits": s.visits }));
      const drop = ((W - label - 230) * s.dropoffs) / max;
      if (drop > 0) svg.append(el("svg:rect", { x: label, y: y + row - 9, width: drop, height: 3, fill: COLORS.abandoned }));
      svg.append(el("svg:text", { x: label + w + 6, y: y + 14, "font-size": 11, fill: "#445" },
        `${s.visits} visits · ${s.dropoffs} left · invalid ${pct(s.invalid_rate)}`));
    });
    target.append(svg);
    const hidden = states.length - shown.length;
    if (hidden) target.append(el("p", { class: "note" }, `${hidden} state(s) with fewer than ${data.min_group} subscribers suppressed.`));
  }
}

function surveys(data) {
  const target = $("surveys");
  target.replaceChildren();
  if (!data.surveys.length) { target.append(el("p", { class: "note" }, "No survey answers in this range.")); return; }
  data.surveys.forEach((s) => {
    target.append(el("h3", {}, `${s.flow} · ${short(s.version)}`));
    if (s.suppressed) { target.append(el("p", { class: "note" }, s.suppressed)); return; }
    const max = Math.max(1, ...Object.values(s.scores));
    const W = 360, H = 110, bw = 50;
    const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H + 20}`, class: "survey", role: "img", "aria-label": `scores ${s.flow}` });
    for (let k = 1; k <= 5; k++) {
      const n = s.scores[String(k)] || 0, h = (n / max) * (H - 14), x = (k - 1) * (bw + 12) + 4;
      svg.append(el("svg:rect", { x, y: H - h, width: bw, height: h, fill: "#2e9d5b", class: "score-bar", "data-score": k, "data-n": n }));
      svg.append(el("svg:text", { x: x + bw / 2 - 4, y: H + 14, "font-size": 11 }, String(k)));
      svg.append(el("svg:text", { x: x + bw / 2 - 4, y: H - h - 3, "font-size": 10, fill: "#445" }, String(n)));
    }
    target.append(svg, el("p", { class: "note" }, `${s.answers} answers, mean ${s.mean}`));
  });
}

function render(data) {
  kpis(data);
  outcomesChart(data);
  table($("totals"), SESSION_HEADERS, data.totals.map(sessionCells));
  table($("rows"), SESSION_HEADERS, data.rows.map(sessionCells));
  funnels(data);
  surveys(data);
  table($("upstream"), ["day", "lookups", "errors", "cache hit rate", "stale shown", "breaker open s"],
    data.upstream.map((u) => [u.day, String(u.lookups), String(u.lookup_errors), pct(u.cache_hit_rate), String(u.stale_shown), num(u.breaker_open_seconds)]));
  $("note").textContent = `${data.first} … ${data.last}. Rows describing fewer than ${data.min_group} subscribers are suppressed. ${data.open_sessions} session(s) still open.`;
  $("figures").hidden = false;
}

async function load(event) {
  if (event) event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  sessionStorage.setItem("hotline-admin-token", token);
  $("status").textContent = "loading…";
  const response = await fetch(`/admin/analytics/data?since=${encodeURIComponent($("since").value)}`,
    { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) {
    $("status").textContent = response.status === 401 ? "wrong token" : `error ${response.status}`;
    $("figures").hidden = true;
    return;
  }
  render(await response.json());
  $("status").textContent = "";
  document.body.dataset.loaded = "1";
}

$("controls").addEventListener("submit", load);
$("token").value = sessionStorage.getItem("hotline-admin-token") || "";
if ($("token").value) load();
