// StageGraph view: the SVG is drawn once; status, durations and breakpoints
// arrive as small maps and are applied to the drawn nodes by id.
const STATUSES = ["pending", "running", "success", "paused", "failed"];

function nodeId(address) {
  return "pipenb-stage-" + address.replaceAll("/", "--");
}

function render({ model, el }) {
  el.classList.add("pipenb-graph-root");
  const caption = document.createElement("div");
  caption.className = "pipenb-graph-caption";
  const canvas = document.createElement("div");
  canvas.className = "pipenb-graph-canvas";
  const legend = document.createElement("div");
  legend.className = "pipenb-graph-legend";
  for (const s of STATUSES) {
    const item = document.createElement("span");
    item.className = "pipenb-legend-item pipenb-status-" + s;
    const swatch = document.createElement("i");
    item.append(swatch, document.createTextNode(s));
    legend.append(item);
  }
  const bp = document.createElement("span");
  bp.className = "pipenb-legend-item pipenb-legend-breakpoint";
  bp.append(document.createElement("i"), document.createTextNode("breakpoint (click a stage)"));
  const route = document.createElement("span");
  route.className = "pipenb-legend-item pipenb-legend-route";
  route.append(document.createElement("i"), document.createTextNode("router may jump"));
  legend.append(bp, route);
  el.append(caption, canvas, legend);

  function node(address) {
    return canvas.querySelector('[id="' + CSS.escape(nodeId(address)) + '"]');
  }

  function drawSvg() {
    // The SVG comes from Graphviz or pipenb's own layout; user text in it is escaped there.
    canvas.innerHTML = model.get("svg");
    const svg = canvas.querySelector("svg");
    if (svg && svg.viewBox && svg.viewBox.baseVal) {
      // Room on the left for the duration labels (router loops are drawn on the right).
      const { x, y, width, height } = svg.viewBox.baseVal;  // copied: baseVal is live
      const extra = 64;
      const w = parseFloat(svg.getAttribute("width"));
      svg.setAttribute("viewBox", `${x - extra} ${y} ${width + extra} ${height}`);
      if (!Number.isNaN(w) && width > 0) svg.setAttribute("width", String(w + extra * (w / width)) + "pt");
    }
    for (const address of model.get("leaves")) {
      const g = node(address);
      if (!g) continue;
      g.classList.add("pipenb-node");
      g.dataset.address = address;
      g.addEventListener("click", (ev) => {
        ev.preventDefault();
        const current = model.get("breakpoints") || [];
        const next = current.includes(address)
          ? current.filter((b) => b !== address)
          : current.concat([address]);
        model.set("breakpoints", next);
        model.save_changes();
      });
    }
    applyAll();
  }

  function applyStatus() {
    const status = model.get("status") || {};
    const durations = model.get("durations") || {};
    for (const address of model.get("leaves")) {
      const g = node(address);
      if (!g) continue;
      const s = status[address] || "pending";
      for (const other of STATUSES) g.classList.toggle("pipenb-status-" + other, other === s);
      g.dataset.status = s;
      let label = g.querySelector("text.pipenb-duration");
      const ms = durations[address];
      if (ms === undefined) {
        if (label) label.remove();
        continue;
      }
      if (!label) {
        label = document.createElementNS("http://www.w3.org/2000/svg", "text");
        label.setAttribute("class", "pipenb-duration");
        const box = g.getBBox ? g.getBBox() : { x: 0, y: 0, width: 0, height: 0 };
        label.setAttribute("x", String(box.x - 4));
        label.setAttribute("y", String(box.y + box.height / 2 + 3));
        label.setAttribute("text-anchor", "end");
        g.append(label);
      }
      label.textContent = ms < 1 ? Math.round(ms * 1000) + " µs"
        : ms < 1000 ? ms.toFixed(1) + " ms" : (ms / 1000).toFixed(2) + " s";
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
    caption.textContent = model.get("caption") + (model.get("layout") === "builtin" ? " · built-in layout" : "");
  }

  model.on("change:svg", drawSvg);
  model.on("change:status", applyStatus);
  model.on("change:durations", applyStatus);
  model.on("change:breakpoints", applyBreakpoints);
  model.on("change:caption", applyAll);
  drawSvg();
}

export default { render };
