// StageGraph view: the SVG (laid out in Python, redrawn when the run's marks change: visits, edges
// taken, stale...) is applied status, durations and breakpoints as small maps, by node id.
// Colours come from the `palette` trait (pipenb.graph.PALETTE, the one palette), set as CSS custom
// properties on the widget root (--pipenb-status-<status>, -stroke, -text) that stage_graph.css
// reads; everything else follows the JupyterLab theme. The legend lists the marks the drawing holds.
// A running stage's progress is a thin bar inside the bottom of its node; the step's message goes in
// a line above the drawing (under the node it sat on an edge's arrow), user text set with textContent.
// The drawing fits the output's width (never below a readable scale: then it scrolls); the zoom
// buttons, ctrl+wheel and dragging zoom and pan; the zoom and the scroll survive redraws.
// Clicks are heard once, on the canvas (the SVG may be redrawn); render returns the cleanup (listeners,
// pending frame, palette properties, nodes) anywidget calls when the view goes, as retireWhenGone does.

const make = (tag, className) => Object.assign(document.createElement(tag), { className });

function nodeId(address) {
  // As pipenb.graph.node_id: characters XML cannot hold become U+FFFD, one for one.
  return "pipenb-stage-" + address
    .replace(/[\x00-\x1F\x7F-\x9F\uD800-\uDFFF\uFFFE\uFFFF]/gu, "\uFFFD")
    .replaceAll("/", "--");
}

const cssName = (name) => String(name).replace(/[^A-Za-z0-9_-]/g, "_");

const ZOOM_STEP = 1.25, MIN_SCALE = 0.1, MAX_SCALE = 4;
const READABLE = 0.75;  // fitting the width never shrinks the labels below 3/4 of their size: it scrolls instead

function makeZoom(canvas, tools) {
  // mode "width": fit the output's width (at most 1:1); "all": the whole drawing in view; "manual": as zoomed.
  let mode = "width", scale = 1, natural = null, svg = null, frame = null, drag = null, moved = false;
  const listening = new AbortController(), signal = listening.signal;
  const shown = make("span", "pipenb-zoom-scale");
  function button(text, title, name, fn) {
    const b = make("button", "pipenb-zoom-btn pipenb-zoom-" + name);
    Object.assign(b, { type: "button", textContent: text, title });
    b.addEventListener("click", fn, { signal });
    tools.append(b);
  }
  button("−", "zoom out (or ctrl + wheel)", "out", () => zoomBy(1 / ZOOM_STEP));
  button("+", "zoom in (or ctrl + wheel)", "in", () => zoomBy(ZOOM_STEP));
  button("fit", "fit the output's width", "fit", () => { mode = "width"; apply(); });
  button("all", "the whole graph in view", "all", () => { mode = "all"; apply(); });
  tools.append(shown);

  function naturalSize() {
    // Graphviz sizes its SVG in pt, pipenb's own layout in px.
    const size = (name) => {
      const v = svg.getAttribute(name) || "";
      return parseFloat(v) * (v.trim().endsWith("pt") ? 4 / 3 : 1);
    };
    const w = size("width"), h = size("height");
    return w > 0 && h > 0 ? { w, h } : null;
  }
  function fitted() {
    const room = canvas.clientWidth;
    if (!room) return null;  // not on screen yet: the resize observer asks again
    if (mode === "width") return Math.min(1, Math.max(room / natural.w, READABLE));
    const tall = parseFloat(getComputedStyle(canvas).maxHeight) || natural.h;
    return Math.min(1, room / natural.w, tall / natural.h);
  }
  function apply() {
    if (!svg || !natural) return;
    if (mode !== "manual") {
      const f = fitted();
      if (f === null) return;
      scale = f;
    }
    svg.style.width = natural.w * scale + "px";
    svg.style.height = natural.h * scale + "px";
    canvas.dataset.scale = scale.toFixed(3);
    canvas.dataset.zoom = mode;
    shown.textContent = Math.round(scale * 100) + "%";
  }
  function zoomBy(factor, at) {
    // The point under the pointer (or the middle of the view) stays where it is.
    const r = canvas.getBoundingClientRect();
    const px = at ? at.x - r.left : canvas.clientWidth / 2, py = at ? at.y - r.top : canvas.clientHeight / 2;
    const cx = (canvas.scrollLeft + px) / scale, cy = (canvas.scrollTop + py) / scale;
    scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale * factor));
    mode = "manual";
    apply();
    canvas.scrollLeft = cx * scale - px;
    canvas.scrollTop = cy * scale - py;
  }
  canvas.addEventListener("wheel", (ev) => {  // ctrl/cmd + wheel zooms; the wheel alone scrolls
    if (!(ev.ctrlKey || ev.metaKey)) return;
    ev.preventDefault();
    zoomBy(ev.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, { x: ev.clientX, y: ev.clientY });
  }, { signal, passive: false });
  // Dragging pans. The pointer is captured only once it moved: captured from the start, a click on a
  // stage would land on the canvas instead (and set no breakpoint).
  canvas.addEventListener("pointerdown", (ev) => {
    if (ev.button === 0) drag = { x: ev.clientX, y: ev.clientY, left: canvas.scrollLeft, top: canvas.scrollTop };
    moved = false;
  }, { signal });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (!moved && Math.hypot(dx, dy) < 4) return;
    if (!moved) canvas.setPointerCapture(ev.pointerId);
    moved = true;
    canvas.classList.add("pipenb-panning");
    canvas.scrollLeft = drag.left - dx;
    canvas.scrollTop = drag.top - dy;
  }, { signal });
  const release = () => { drag = null; canvas.classList.remove("pipenb-panning"); };
  canvas.addEventListener("pointerup", release, { signal });
  canvas.addEventListener("pointercancel", release, { signal });
  // Refitted on the next frame: resizing inside the observer's callback would loop.
  const resized = new ResizeObserver(() => {
    if (mode !== "manual" && frame === null) frame = requestAnimationFrame(() => { frame = null; apply(); });
  });
  resized.observe(canvas);
  return {
    drawn(next) { svg = next; natural = next ? naturalSize() : null; apply(); },
    dragged() { const was = moved; moved = false; return was; },  // a click ending a drag is no click
    stop() { listening.abort(); resized.disconnect(); if (frame !== null) cancelAnimationFrame(frame); },
  };
}

// >>> retire-when-gone (the same text in every pipenb view file: tests/widgets/test_view_retire.py)
// JupyterLab renders an output again on each snapshot refresh and keeps the old view: `alive()`, asked on each
// model change and tick, runs `cleanup` once `el` has left the page after being on it (or never came in
// `graceMs`). Still inside an output area (a windowed notebook detached its cell), it lives on.
function retireWhenGone(el, cleanup, graceMs = 10000) {
  const born = Date.now();
  let seen = false, done = false;
  const retire = () => { if (!done) { done = true; cleanup(); } };
  const alive = () => {
    if (el.isConnected) seen = true;
    const gone = !el.isConnected && !el.closest(".jp-OutputArea-output");
    if (!done && gone && (seen || Date.now() - born > graceMs)) retire();
    return !done;
  };
  return { alive, retire, guard: (fn) => (...args) => { if (alive()) fn(...args); } };
}
// <<< retire-when-gone

function render({ model, el }) {
  const life = retireWhenGone(el, dispose);
  let retryLater = null;  // the animation frame a redraw waits for (the drawing laid out), if any
  el.classList.add("pipenb-graph-root");
  const caption = make("div", "pipenb-graph-caption");
  const tools = make("div", "pipenb-graph-zoom");
  const canvas = make("div", "pipenb-graph-canvas");
  const messages = make("div", "pipenb-graph-progress");  // running stages' progress messages
  const legend = make("div", "pipenb-graph-legend");
  const statusRules = document.createElement("style");  // each status names the node colours
  const head = make("div", "pipenb-graph-head");
  head.append(caption, tools);
  el.append(statusRules, head, messages, canvas, legend);
  const zoom = makeZoom(canvas, tools);
  let horizontal = null;  // laid out left to right? Known once the SVG is on screen.
  let paletteProps = [];

  const statuses = () => Object.keys(model.get("palette") || {});

  function applyPalette() {
    for (const prop of paletteProps) el.style.removeProperty(prop);
    paletteProps = [];
    for (const [status, colours] of Object.entries(model.get("palette") || {})) {
      const base = "--pipenb-status-" + cssName(status);
      for (const [part, value] of Object.entries(colours || {})) {
        const prop = part === "fill" ? base : base + "-" + cssName(part);
        el.style.setProperty(prop, String(value));
        paletteProps.push(prop);
      }
    }
    statusRules.textContent = statuses().filter((s) => s !== "pending").map((s) => {
      const v = "--pipenb-status-" + cssName(s);
      return `.pipenb-status-${cssName(s)} { --pipenb-node-fill: var(${v}, rgba(128, 128, 128, 0.18)); ` +
        `--pipenb-node-stroke: var(${v}-stroke, currentColor); --pipenb-node-text: var(${v}-text, currentColor); }`;
    }).join("\n");
    drawLegend();
  }

  function legendItem(className, text) {
    const item = make("span", "pipenb-legend-item " + className);
    item.append(document.createElement("i"), document.createTextNode(text));
    legend.append(item);
  }

  // The marks of a run, listed when the drawing holds one: [class in the SVG, legend class, text].
  const MARKS = [["conditional", "pipenb-legend-conditional", "? conditional breakpoint"],
    ["revisited", "pipenb-legend-visits", "×n visits"], ["taken", "pipenb-legend-taken", "edge taken ×n times"],
    ["undeclared", "pipenb-legend-undeclared", "undeclared move"], ["stale", "pipenb-legend-stale", "code changed"],
    ["current", "pipenb-legend-current", "this position"]];

  function drawLegend() {
    legend.replaceChildren();
    for (const s of statuses()) legendItem("pipenb-status-" + cssName(s), s);
    legendItem("pipenb-legend-breakpoint", "breakpoint (click a stage)");
    legendItem("pipenb-legend-route", "router may jump");
    for (const [mark, className, text] of MARKS) {
      if (canvas.querySelector("svg ." + mark)) legendItem(className, text);
    }
  }

  const node = (address) => canvas.querySelector('[id="' + CSS.escape(nodeId(address)) + '"]');

  function isHorizontal() {
    // Graphviz lays long pipelines out left to right: is the second stage right of the first?
    if (horizontal !== null) return horizontal;
    const leaves = model.get("leaves") || [];
    const a = leaves.length > 1 && node(leaves[0]), b = leaves.length > 1 && node(leaves[1]);
    if (!a || !b || !a.getBBox) return false;
    const ba = a.getBBox(), bb = b.getBBox();
    if (ba.width === 0 && ba.height === 0) return false;  // not on screen yet: ask again later
    horizontal = bb.x >= ba.x + ba.width;
    return horizontal;
  }

  function drawSvg() {
    // The SVG comes from Graphviz or pipenb's own layout; user text in it is escaped there.
    // Redrawn as a run goes (its marks): the view stays where the user scrolled it.
    const [scrollLeft, scrollTop] = [canvas.scrollLeft, canvas.scrollTop];
    canvas.innerHTML = model.get("svg");
    horizontal = null;
    bars.clear();
    messages.replaceChildren();
    const svg = canvas.querySelector("svg");
    if (svg && svg.viewBox && svg.viewBox.baseVal) {
      // Room on the left for the duration labels (router loops are drawn on the right),
      // and below, where they go when the graph runs left to right.
      const { x, y, width, height } = svg.viewBox.baseVal;  // copied: baseVal is live
      const left = 64, below = 22;  // below: also a running last stage's progress bar and message
      svg.setAttribute("viewBox", `${x - left} ${y} ${width + left} ${height + below}`);
      const w = parseFloat(svg.getAttribute("width")), h = parseFloat(svg.getAttribute("height"));
      if (!Number.isNaN(w) && width > 0) svg.setAttribute("width", String(w * (width + left) / width) + "pt");
      if (!Number.isNaN(h) && height > 0) svg.setAttribute("height", String(h * (height + below) / height) + "pt");
    }
    for (const address of model.get("leaves")) {
      const g = node(address);
      if (!g) continue;
      g.classList.add("pipenb-node");
      g.dataset.address = address;
    }
    zoom.drawn(svg);
    Object.assign(canvas, { scrollLeft, scrollTop });
    drawLegend();
    applyAll();
  }

  function clicked(ev) {
    // A click on a stage toggles its breakpoint.
    const g = ev.target.closest ? ev.target.closest(".pipenb-node") : null;
    if (!g || !canvas.contains(g) || zoom.dragged()) return;
    ev.preventDefault();
    const address = g.dataset.address;
    const current = model.get("breakpoints") || [];
    const next = current.includes(address) ? current.filter((b) => b !== address) : current.concat([address]);
    model.set("breakpoints", next);
    model.save_changes();
  }

  function applyStatus() {
    const status = model.get("status") || {};
    const durations = model.get("durations") || {};
    for (const address of model.get("leaves")) {
      const g = node(address);
      if (!g) continue;
      const s = status[address] || "pending";
      const before = g.dataset.status;
      if (before !== undefined && before !== s) g.classList.remove("pipenb-status-" + cssName(before));
      g.classList.add("pipenb-status-" + cssName(s));
      g.dataset.status = s;
      let label = g.querySelector("text.pipenb-duration");
      const ms = durations[address];
      if (ms === undefined) {
        if (label) label.remove();
        continue;
      }
      if (!label) {
        const box = g.getBBox ? g.getBBox() : { x: 0, y: 0, width: 0, height: 0 };
        if (!box.width) {
          // Not laid out yet (a hidden tab, an output not drawn): a label placed now would sit at
          // the drawing's corner and stretch the stage's clickable box. Try again once drawn.
          if (retryLater === null) {
            retryLater = requestAnimationFrame(() => { retryLater = null; applyStatus(); });
          }
          continue;
        }
        label = svgEl("text", isHorizontal()  // under the node, or left of it
          ? { class: "pipenb-duration", x: box.x + box.width / 2, y: box.y + box.height + 9, "text-anchor": "middle" }
          : { class: "pipenb-duration", x: box.x - 4, y: box.y + box.height / 2 + 3, "text-anchor": "end" });
        g.append(label);
      }
      label.textContent = ms < 1 ? Math.round(ms * 1000) + " µs"
        : ms < 1000 ? ms.toFixed(1) + " ms" : (ms / 1000).toFixed(2) + " s";
    }
  }

  const SVG = "http://www.w3.org/2000/svg";
  const bars = new Map();  // address -> the progress group drawn for it

  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  function progressBar(address, g) {
    let bar = bars.get(address);
    if (bar && bar.group.isConnected) return bar;
    const box = g.getBBox ? g.getBBox() : { x: 0, y: 0, width: 0, height: 0 };
    // Along the bottom of the node, inside it, clear of its rounded corners: under the node it sat on the
    // edge leaving it. Drawn beside the node's shapes, not in its group: the node's CSS colours every rect in it.
    const h = 3, x = box.x + 7, w = Math.max(4, box.width - 14), y = box.y + box.height - h - 3;
    const group = svgEl("g", { class: "pipenb-progress" });
    group.dataset.address = address;
    const track = svgEl("rect", { class: "pipenb-progress-track", x, y, width: w, height: h, rx: 1.5 });
    const fill = svgEl("rect", { class: "pipenb-progress-fill", x, y, width: 0, height: h, rx: 1.5 });
    const swing = svgEl("animate", { attributeName: "x", dur: "1.2s", repeatCount: "indefinite",
                                     values: `${x};${x + w * 0.7};${x}` });
    group.append(track, fill);
    (g.parentNode || g).append(group);
    // The message: a line above the drawing (HTML: cut with an ellipsis by CSS, the whole of it in the title).
    const text = make("div", "pipenb-progress-message");
    text.dataset.address = address;
    messages.append(text);
    bar = { group, fill, swing, text, x, w };
    bars.set(address, bar);
    return bar;
  }

  function applyProgress() {
    const progress = model.get("progress") || {};
    for (const [address, bar] of bars) {
      if (!(address in progress) || !bar.group.isConnected) {
        bar.group.remove();
        bar.text.remove();
        bars.delete(address);
      }
    }
    for (const [address, p] of Object.entries(progress)) {
      const g = node(address);
      if (!g || !p) continue;
      const bar = progressBar(address, g);
      const done = typeof p.done === "number" ? p.done : null;
      const total = typeof p.total === "number" && p.total > 0 ? p.total : null;
      bar.group.dataset.done = done === null ? "" : String(done);
      bar.group.dataset.total = total === null ? "" : String(total);
      if (total !== null && done !== null) {
        const fraction = Math.min(1, Math.max(0, done / total));
        bar.group.classList.remove("pipenb-progress-indeterminate");
        bar.swing.remove();
        bar.fill.setAttribute("x", String(bar.x));
        bar.fill.setAttribute("width", String(bar.w * fraction));
        bar.group.dataset.fraction = fraction.toFixed(4);
      } else {
        // No total: a short segment swinging along the track.
        bar.group.classList.add("pipenb-progress-indeterminate");
        bar.fill.setAttribute("width", String(bar.w * 0.3));
        if (!bar.swing.isConnected) bar.fill.append(bar.swing);
        delete bar.group.dataset.fraction;
      }
      const count = done === null ? "" : total !== null ? `${done}/${total}` : String(done);
      const line = [count, p.message || ""].filter((t) => t !== "").join(" — ");
      bar.text.textContent = address + ": " + (line || "running");
      bar.text.title = bar.text.textContent;
    }
  }

  function applyBreakpoints() {
    const bps = new Set(model.get("breakpoints") || []);
    for (const address of model.get("leaves")) {
      const g = node(address);
      if (g) g.classList.toggle("pipenb-breakpoint", bps.has(address));
    }
  }

  function applyAll() {
    applyStatus();
    applyBreakpoints();
    applyProgress();
    caption.textContent = model.get("caption") + (model.get("layout_engine") === "builtin" ? " · built-in layout" : "");
  }

  const handlers = [["change:svg", drawSvg], ["change:status", applyStatus], ["change:durations", applyStatus],
    ["change:breakpoints", applyBreakpoints], ["change:progress", applyProgress], ["change:caption", applyAll],
    ["change:palette", applyPalette]].map(([name, fn]) => [name, life.guard(fn)]);
  for (const [name, fn] of handlers) model.on(name, fn);
  const listening = new AbortController();
  canvas.addEventListener("click", clicked, { signal: listening.signal });
  applyPalette();
  drawSvg();
  function dispose() {
    for (const [name, fn] of handlers) model.off(name, fn);
    listening.abort();
    if (retryLater !== null) cancelAnimationFrame(retryLater);
    for (const prop of paletteProps) el.style.removeProperty(prop);
    bars.clear();
    zoom.stop();
    el.replaceChildren();
    el.classList.remove("pipenb-graph-root");
  }
  return life.retire;
}

export default { render };
