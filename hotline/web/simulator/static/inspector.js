// hotline web simulator — the inspector beside the phone.
// After each answer phone.js says which session it was ("hotline:turn"); this asks the
// simulator-only endpoints what the engine keeps for it and shows it: flow, version,
// state, variables (masked by the server: phone numbers 138****8000, secrets ••••),
// each step's engine events, and the flow graph with the current state highlighted.
// The graph is Graphviz's SVG when the server has `dot`, otherwise drawn here from the
// flow's states and edges. No libraries, no build step.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const root = $("inspector"), graphEl = $("graph");
  const insp = { channel: null, session: null, data: null, graphKey: null, natural: null,
    scale: 1, seq: 0 };
  window.hotlineInspector = insp; // for the browser tests and the curious

  async function getJson(url) {
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 120)}`);
    return response.json();
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "class") node.className = value;
      else node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  // ---- facts, variables, steps ---------------------------------------------------
  function setFact(id, ...content) { $(id).replaceChildren(...content); }

  function renderFacts(data) {
    $("insp-empty").hidden = data.found;
    $("facts").hidden = !data.found;
    if (!data.found) {
      $("insp-empty").textContent = data.steps.length
        ? "The session has ended and expired; its steps are below."
        : "No session yet for this dial or call.";
      return;
    }
    setFact("insp-flow", el("code", {}, data.flow),
      data.current ? "" : el("span", { class: "badge old", title: "a newer version is loaded; this session keeps its own" }, "older version"));
    setFact("insp-version", el("code", { title: data.version }, data.version.slice(0, 12)));
    setFact("insp-state", el("code", { class: "state" }, data.state), " ",
      el("span", { class: `badge kind-${data.kind || "unknown"}` }, data.kind || "?"),
      data.ended ? el("span", { class: "badge ended" }, "ended") : "");
    setFact("insp-page", `${data.page + 1} / ${data.pages}`);
    setFact("insp-language", data.language);
    setFact("insp-back", data.back.length ? data.back.join(" › ") : "—");
  }

  function renderVars(data) {
    const body = document.querySelector("#vars tbody");
    const rows = (data.vars || []).map((v) => {
      const value = el("td", { class: "value" }, v.value);
      if (v.masked) {
        value.classList.add("masked");
        value.title = v.masked === "phone" ? "masked: a phone number" : "masked: a secret";
        value.append(" ", el("span", { class: "badge mask" }, v.masked === "phone" ? "phone" : "secret"));
      }
      return el("tr", { "data-name": v.name }, el("th", { scope: "row" }, v.name), value,
        el("td", { class: "type" }, v.type));
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "3", class: "none" }, "no variables yet")));
    body.replaceChildren(...rows);
  }

  const KIND_WORDS = { start: "start", input: "keys", timeout: "silence", repeat: "repeat",
    hangup: "hang-up" };

  function eventClass(event) {
    const [head, , outcome] = event.split(":");
    if (head === "action") return outcome === "ok" ? "ev-ok" : "ev-branch";
    if (head === "invalid" || head === "no_input" || event === "apology" || event === "refused") return "ev-bad";
    if (head === "ended") return "ev-end";
    return "ev-info";
  }

  function renderSteps(data) {
    const list = $("steps");
    const items = data.steps.map((step) => {
      const head = el("div", { class: "step-head" },
        el("span", { class: "n" }, `#${step.n}`), " ", KIND_WORDS[step.kind] || step.kind,
        step.input != null ? el("code", { class: "input" }, step.input) : "",
        " → ", el("code", {}, step.state || "—"));
      const events = el("ul", { class: "events", "aria-label": "engine events" },
        ...(step.events.length ? step.events : ["(no event)"]).map(
          (e) => el("li", { class: eventClass(e) }, e)));
      return el("li", { "data-n": String(step.n) }, head, events);
    });
    list.replaceChildren(...items);
    list.scrollTop = list.scrollHeight;
  }

  // ---- the graph -------------------------------------------------------------------
  function importSvg(text) {
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = doc.documentElement;
    if (svg.nodeName !== "svg") throw new Error("not an SVG");
    svg.querySelectorAll("script, foreignObject").forEach((n) => n.remove());
    return document.importNode(svg, true);
  }

  // Kind → fill and stroke, as `hotline flows graph` colours them.
  const COLOURS = {
    entry: ["#fce4ec", "#ad1457"], menu: ["#e3f2fd", "#1565c0"], input: ["#f3e5f5", "#6a1b9a"],
    action: ["#fff8e1", "#ef6c00"], switch: ["#e8f5e9", "#2e7d32"], end: ["#eeeeee", "#424242"],
  };

  // A plain layered layout (used when the server has no Graphviz): entries first,
  // then each state one column right of the first state that leads to it.
  function drawGraph(flow) {
    const W = 170, H = 46, GX = 70, GY = 22, PAD = 16;
    const rank = new Map(), order = [];
    const queue = flow.nodes.filter((n) => n.kind === "entry").map((n) => n.name);
    if (!queue.length) queue.push(flow.start);
    queue.forEach((name) => rank.set(name, 0));
    while (queue.length) {
      const name = queue.shift();
      order.push(name);
      for (const e of flow.edges) {
        if (e.source === name && !rank.has(e.target)) {
          rank.set(e.target, rank.get(name) + 1);
          queue.push(e.target);
        }
      }
    }
    const last = Math.max(0, ...rank.values()) + 1;
    for (const n of flow.nodes) if (!rank.has(n.name)) { rank.set(n.name, last); order.push(n.name); }
    const column = new Map(), pos = new Map();
    for (const name of order) {
      const r = rank.get(name);
      const row = column.get(r) || 0;
      column.set(r, row + 1);
      pos.set(name, { x: PAD + r * (W + GX), y: PAD + row * (H + GY) });
    }
    const width = PAD * 2 + (Math.max(...rank.values()) + 1) * (W + GX) - GX;
    const height = PAD * 2 + Math.max(...column.values()) * (H + GY) - GY;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const s = (tag, attrs, parent) => {
      const node = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      parent.appendChild(node);
      return node;
    };
    const defs = s("defs", {}, svg);
    const marker = s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs);
    s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#555" }, marker);
    for (const e of flow.edges) {
      const a = pos.get(e.source), b = pos.get(e.target);
      if (!a || !b) continue;
      const g = s("g", { class: `edge${e.error ? " error" : ""}` }, svg);
      s("title", {}, g).textContent = `${e.source}->${e.target}${e.label ? " " + e.label : ""}`;
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      const bend = x2 > x1 ? (x2 - x1) / 2 : 80;
      s("path", { d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
        fill: "none", stroke: e.error ? "#c62828" : "#555",
        "stroke-dasharray": e.error ? "4 3" : "none", "marker-end": "url(#arrow)" }, g);
    }
    for (const n of flow.nodes) {
      const p = pos.get(n.name);
      const g = s("g", { class: `node kind-${n.kind}` }, svg);
      s("title", {}, g).textContent = n.name;
      const [fill, stroke] = COLOURS[n.kind] || COLOURS.menu;
      s("rect", { x: p.x, y: p.y, width: W, height: H, rx: n.kind === "end" ? 20 : 6,
        fill, stroke, "stroke-width": n.start ? 2.5 : 1 }, g);
      const label = n.kind === "entry" ? n.text : n.name;
      s("text", { x: p.x + 8, y: p.y + 18, "font-weight": "600", "font-size": "12" }, g).textContent = label;
      if (n.kind !== "entry" && n.text) {
        s("text", { x: p.x + 8, y: p.y + 36, "font-size": "10" }, g).textContent =
          n.text.length > 24 ? n.text.slice(0, 23) + "…" : n.text;
      }
    }
    svg.dataset.drawn = "page";
    return svg;
  }

  function placeGraph(flow) {
    let svg;
    try {
      svg = flow.svg ? importSvg(flow.svg) : drawGraph(flow);
    } catch (err) {
      svg = drawGraph(flow);
    }
    const box = (svg.getAttribute("viewBox") || "0 0 600 400").split(/[\s,]+/).map(Number);
    insp.natural = { width: box[2], height: box[3] };
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `flow ${flow.id}: ${flow.nodes.filter((n) => n.kind !== "entry").length} states`);
    graphEl.replaceChildren(svg);
    graphEl.dataset.source = flow.svg ? "graphviz" : "page";
    // A new flow: whole when it fits at a readable size, else life size around the state.
    const fit = fitScale();
    setScale(fit >= 0.6 ? Math.min(fit, 1) : 1);
  }

  function setScale(scale) {
    const svg = graphEl.querySelector("svg");
    if (!svg || !insp.natural) return;
    insp.scale = Math.min(3, Math.max(0.2, scale));
    svg.setAttribute("width", String(Math.round(insp.natural.width * insp.scale)));
    svg.setAttribute("height", String(Math.round(insp.natural.height * insp.scale)));
  }

  function fitScale() {
    return insp.natural ? (graphEl.clientWidth - 12) / insp.natural.width : 1;
  }

  function nodeTitle(g) {
    const title = g.querySelector(":scope > title");
    return title ? title.textContent.trim() : "";
  }

  function highlight(state, visited) {
    let current = null;
    graphEl.querySelectorAll("g.node").forEach((g) => {
      const name = nodeTitle(g);
      g.classList.toggle("current", name === state);
      g.classList.toggle("visited", name !== state && visited.has(name));
      if (name === state) { g.setAttribute("aria-current", "step"); current = g; }
      else g.removeAttribute("aria-current");
    });
    graphEl.dataset.current = current ? state : "";
    graphEl.setAttribute("aria-label", current ? `flow graph, current state ${state}` : "flow graph");
    if (current) centre(current);
  }

  function centre(node) {
    const box = graphEl.getBoundingClientRect(), at = node.getBoundingClientRect();
    graphEl.scrollLeft += at.left + at.width / 2 - (box.left + box.width / 2);
    graphEl.scrollTop += at.top + at.height / 2 - (box.top + box.height / 2);
  }

  async function showGraph(data) {
    const key = `${data.flow}@${data.version}@${data.language}`;
    if (insp.graphKey !== key) {
      const query = new URLSearchParams({ version: data.version, language: data.language });
      const flow = await getJson(`/simulator/api/flow/${encodeURIComponent(data.flow)}?${query}`);
      placeGraph(flow);
      insp.graphKey = key;
    }
    const visited = new Set([...data.back, ...data.steps.map((s) => s.state)]);
    highlight(data.state, visited);
  }

  // ---- one turn ----------------------------------------------------------------------
  // `message`: an SMS's id, when the page knows no session id (the server finds it).
  async function refresh(channel, session, message) {
    const seq = ++insp.seq;
    const query = new URLSearchParams(message ? { channel, message } : { channel, session });
    let data;
    try {
      data = await getJson(`/simulator/api/session?${query}`);
      if (seq !== insp.seq) return; // a later turn is on its way
      session = data.session;
      insp.channel = channel; insp.session = session; insp.data = data;
      renderFacts(data);
      renderVars(data);
      renderSteps(data);
      if (data.found) await showGraph(data);
    } catch (err) {
      if (seq !== insp.seq) return;
      $("insp-empty").hidden = false;
      $("insp-empty").textContent = `The inspector could not ask the server: ${err.message}`;
      return;
    }
    if (seq !== insp.seq) return;
    // Set last, when everything above shows this turn (the browser tests wait on it).
    root.dataset.session = session;
    root.dataset.state = data.found ? data.state : "";
    root.dataset.steps = String(data.steps.length);
  }

  document.addEventListener("hotline:turn",
    (ev) => refresh(ev.detail.channel, ev.detail.session, ev.detail.message));
  document.querySelector(".graph-tools").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-zoom]");
    if (!button) return;
    const how = button.dataset.zoom;
    setScale(how === "fit" ? fitScale() : insp.scale * (how === "in" ? 1.25 : 0.8));
  });
  graphEl.addEventListener("keydown", (ev) => {
    if (ev.key === "+" || ev.key === "=") setScale(insp.scale * 1.25);
    else if (ev.key === "-") setScale(insp.scale * 0.8);
    else if (ev.key === "f") setScale(fitScale());
    else return;
    ev.preventDefault();
  });
  insp.refresh = refresh;
  insp.drawGraph = drawGraph;
})();
