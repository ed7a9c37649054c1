// StageGraph view: the SVG is drawn once; status, durations and breakpoints
// arrive as small maps and are applied to the drawn nodes by id.
// Colours come from the `palette` trait (pipenb.graph.PALETTE, the one palette):
// they are set as CSS custom properties on the widget root
// (--pipenb-status-<status>, --pipenb-status-<status>-stroke, -text), which
// stage_graph.css reads; everything else follows the JupyterLab theme.
// A running stage's progress (`progress` trait) is a thin bar along the bottom
// of its node plus the step's message in a line under it; the message is user
// text and only ever set with textContent.
// Clicks are heard once, on the canvas (the SVG may be redrawn); render returns the cleanup
// anywidget calls when the view goes (or the module hot-reloads): listeners, the pending frame,
// the palette properties and the view's nodes go.

function make(tag, className) {
  const node = document.createElement(tag);
  node.className = className;
  return node;
}

function nodeId(address) {
  // As pipenb.graph.node_id: characters XML cannot hold become U+FFFD, one for one.
  return "pipenb-stage-" + address
    .replace(/[\x00-\x1F\x7F-\x9F\uD800-\uDFFF\uFFFE\uFFFF]/gu, "\uFFFD")
    .replaceAll("/", "--");
}

function cssName(name) {
  return String(name).replace(/[^A-Za-z0-9_-]/g, "_");
}

function render({ model, el }) {
  let retryLater = null;  // the animation frame a redraw waits for (the drawing laid out), if any
  el.classList.add("pipenb-graph-root");
  const caption = make("div", "pipenb-graph-caption");
  const canvas = make("div", "pipenb-graph-canvas");
  const legend = make("div", "pipenb-graph-legend");
  const statusRules = document.createElement("style");  // each status names the node colours
  el.append(statusRules, caption, canvas, legend);
  let horizontal = null;  // laid out left to right? Known once the SVG is on screen.
  let paletteProps = [];

  function statuses() {
    return Object.keys(model.get("palette") || {});
  }

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
    legend.replaceChildren();
    for (const s of statuses()) {
      const item = document.createElement("span");
      item.className = "pipenb-legend-item pipenb-status-" + cssName(s);
      item.append(document.createElement("i"), document.createTextNode(s));
      legend.append(item);
    }
    const bp = make("span", "pipenb-legend-item pipenb-legend-breakpoint");
    bp.append(document.createElement("i"), document.createTextNode("breakpoint (click a stage)"));
    const route = make("span", "pipenb-legend-item pipenb-legend-route");
    route.append(document.createElement("i"), document.createTextNode("router may jump"));
    legend.append(bp, route);
  }

  function node(address) {
    return canvas.querySelector('[id="' + CSS.escape(nodeId(address)) + '"]');
  }

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
    canvas.innerHTML = model.get("svg");
    horizontal = null;
    bars.clear();
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
    applyAll();
  }

  function clicked(ev) {
    // A click on a stage toggles its breakpoint.
    const g = ev.target.closest ? ev.target.closest(".pipenb-node") : null;
    if (!g || !canvas.contains(g)) return;
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
        label = document.createElementNS("http://www.w3.org/2000/svg", "text");
        label.setAttribute("class", "pipenb-duration");
        if (isHorizontal()) {
          label.setAttribute("x", String(box.x + box.width / 2));
          label.setAttribute("y", String(box.y + box.height + 9));
          label.setAttribute("text-anchor", "middle");
        } else {
          label.setAttribute("x", String(box.x - 4));
          label.setAttribute("y", String(box.y + box.height / 2 + 3));
          label.setAttribute("text-anchor", "end");
        }
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
    // Just under the node (inside, the rounded corners and the label leave no room).
    const h = 4, x = box.x + 2, w = Math.max(4, box.width - 4), y = box.y + box.height + 2;
    // Drawn beside the node, not in it: the node's CSS colours every rect inside it.
    const group = svgEl("g", { class: "pipenb-progress" });
    group.dataset.address = address;
    const track = svgEl("rect", { class: "pipenb-progress-track", x, y, width: w, height: h, rx: 1.5 });
    const fill = svgEl("rect", { class: "pipenb-progress-fill", x, y, width: 0, height: h, rx: 1.5 });
    const swing = svgEl("animate", { attributeName: "x", dur: "1.2s", repeatCount: "indefinite",
                                     values: `${x};${x + w * 0.7};${x}` });
    // The message under the node, cut with an ellipsis by CSS (foreignObject holds HTML).
    // Wider than the node, but inside the drawing (beyond it the SVG would cut the text, ellipsis and all).
    let left = box.x - 30, right = box.x + box.width + 30;
    const svg = canvas.querySelector("svg"), parent = g.parentNode;
    const ctm = parent && parent.getScreenCTM ? parent.getScreenCTM() : null;
    if (svg && ctm) {
      const r = svg.getBoundingClientRect(), inv = ctm.inverse();
      const a = new DOMPoint(r.left, r.top).matrixTransform(inv), b = new DOMPoint(r.right, r.bottom).matrixTransform(inv);
      left = Math.max(left, Math.min(a.x, b.x) + 1);
      right = Math.min(right, Math.max(a.x, b.x) - 1);
    }
    const fo = svgEl("foreignObject", { class: "pipenb-progress-text", x: left, y: y + h + 1,
                                        width: Math.max(box.width, right - left), height: 13 });
    const text = document.createElementNS("http://www.w3.org/1999/xhtml", "div");
    text.className = "pipenb-progress-message";
    fo.append(text);
    group.append(track, fill, fo);
    (g.parentNode || g).append(group);
    bar = { group, fill, swing, text, x, w };
    bars.set(address, bar);
    return bar;
  }

  function applyProgress() {
    const progress = model.get("progress") || {};
    for (const [address, bar] of bars) {
      if (!(address in progress) || !bar.group.isConnected) {
        bar.group.remove();
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
      bar.text.textContent = line;
      bar.text.title = line;
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
    ["change:palette", applyPalette]];
  for (const [name, fn] of handlers) model.on(name, fn);
  const listening = new AbortController();
  canvas.addEventListener("click", clicked, { signal: listening.signal });
  applyPalette();
  drawSvg();
  return () => {
    for (const [name, fn] of handlers) model.off(name, fn);
    listening.abort();
    if (retryLater !== null) cancelAnimationFrame(retryLater);
    for (const prop of paletteProps) el.style.removeProperty(prop);
    bars.clear();
    el.replaceChildren();
    el.classList.remove("pipenb-graph-root");
  };
}

export default { render };
