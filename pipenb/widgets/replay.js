// RunReplay view. The graph (and the compared run's) is drawn once from the `svg` traits; each
// position arrives as a small `frame` dict and is applied to the drawn nodes and edges by class
// and text changes: the stages run so far, the stage of the record, visit counts, the moves taken
// (a move with no drawn edge gets an extra dashed one). Play, pause, speed and the scrubber only
// move `position`, at most ten times a second; the kernel answers with the frame. User text only
// reaches the page through textContent or the kernel's escaped HTML (state, diff, events).

const TICK_MS = 100;  // at most ten position changes a second, whatever the speed
const SPEEDS = [1, 2, 5, 10, 20, 50, 100, 500];

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgMake(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function nodeId(address) {
  // As pipenb.graph.node_id: characters XML cannot hold become U+FFFD, one for one.
  return "pipenb-stage-" + String(address)
    .replace(/[\x00-\x1F\x7F-\x9F\uD800-\uDFFF\uFFFE\uFFFF]/gu, "\uFFFD")
    .replaceAll("/", "--");
}

function button(label, title, cls) {
  const b = make("button", "pipenb-replay-btn " + cls, label);
  b.type = "button";
  b.title = title;
  return b;
}

// One drawn graph: restyled per frame, never laid out again.
function graphView(host) {
  const canvas = make("div", "pipenb-replay-canvas");
  host.append(canvas);
  let nodes = new Map(), edges = new Map(), extras = new Map(), badges = new Map(), overlay = null;

  function load(svgText, edgeIds) {
    canvas.innerHTML = svgText || "";  // made by the kernel (pipenb.graph), every text escaped
    nodes = new Map(); edges = new Map(); extras = new Map(); badges = new Map();
    const svg = canvas.querySelector("svg");
    if (!svg) return;
    for (const g of svg.querySelectorAll("g.node[id]")) nodes.set(g.id, g);
    const byId = new Map(Array.from(svg.querySelectorAll("g.edge[id]"), (g) => [g.id, g]));
    for (const [move, id] of Object.entries(edgeIds || {})) if (byId.has(id)) edges.set(move, byId.get(id));
    overlay = svgMake("g", { class: "pipenb-replay-overlay" });
    (svg.querySelector("g.graph") || svg).append(overlay);
  }

  function box(address) {
    const g = nodes.get(nodeId(address));
    if (!g) return null;
    try { return g.getBBox(); } catch (e) { return null; }
  }

  function label(key, x, y, text, cls) {
    let t = badges.get(key);
    if (!t) {
      t = svgMake("text", { class: cls });
      overlay.append(t);
      badges.set(key, t);
    }
    t.setAttribute("x", x.toFixed(1));
    t.setAttribute("y", y.toFixed(1));
    t.textContent = text;
    t.style.display = "";
  }

  function extraEdge(key, a, b) {
    let p = extras.get(key);
    const ba = box(a), bb = box(b);
    if (!ba || !bb) return null;
    if (!p) {
      p = svgMake("path", { class: "pipenb-replay-extra" });
      overlay.prepend(p);
      extras.set(key, p);
    }
    const x1 = ba.x + ba.width, y1 = ba.y + ba.height / 2, x2 = bb.x + bb.width, y2 = bb.y + bb.height / 2;
    const bend = Math.max(x1, x2) + 30 + Math.abs(y2 - y1) / 6;
    p.setAttribute("d", a === b
      ? `M${x1},${y1 - 6} C${x1 + 30},${y1 - 20} ${x1 + 30},${y1 + 20} ${x1},${y1 + 6}`
      : `M${x1},${y1} C${bend},${y1} ${bend},${y2} ${x2},${y2}`);
    p.style.display = "";
    return { x: bend + 10, y: (y1 + y2) / 2 + 4 };
  }

  function edgeMiddle(g) {
    // Beside the middle of the edge, off to its left as it goes (two opposite edges label opposite sides).
    const path = g.querySelector("path");
    if (!path) return null;
    try {
      const half = path.getTotalLength() / 2, p = path.getPointAtLength(half), q = path.getPointAtLength(half + 1);
      const dx = q.x - p.x, dy = q.y - p.y, len = Math.hypot(dx, dy) || 1;
      return { x: p.x + (dy / len) * 10, y: p.y - (dx / len) * 10 + 4 };
    } catch (e) { return null; }
  }

  function apply(frame) {
    if (!overlay) return;
    const visits = frame.visits || {}, current = frame.current ? nodeId(frame.current) : null;
    for (const [id, g] of nodes) {
      g.classList.toggle("pipenb-r-ran", false);
      g.classList.toggle("pipenb-r-current", id === current);
    }
    for (const t of badges.values()) t.style.display = "none";
    for (const p of extras.values()) p.style.display = "none";
    for (const [address, n] of Object.entries(visits)) {
      const g = nodes.get(nodeId(address));
      if (!g) continue;
      g.classList.add("pipenb-r-ran");
      const b = box(address);
      if (b && n > 1) label("v" + address, b.x + b.width - 5, b.y + 11, "×" + n, "pipenb-replay-visits");
    }
    // Moves along one drawn edge (out of a sub-pipeline from several of its stages) add up on it.
    const taken = new Map();
    for (const [a, b, n] of frame.edges || []) {
      const key = a + "\u0000" + b, g = edges.get(key);
      if (g) {
        taken.set(g, (taken.get(g) || 0) + n);
      } else {
        const at = extraEdge(key, a, b);
        if (at) label("e" + key, at.x, at.y, "×" + n, "pipenb-replay-count");
      }
    }
    for (const g of new Set(edges.values())) {
      g.classList.toggle("pipenb-r-taken", taken.has(g));
      const at = taken.has(g) ? edgeMiddle(g) : null;
      if (at) label("e" + g.id, at.x, at.y, "×" + taken.get(g), "pipenb-replay-count");
    }
  }

  return { load, apply, canvas };
}

// One run's column: caption, graph, what record i did, its state and events.
function runColumn(parent, cls) {
  const col = make("div", "pipenb-replay-run " + cls);
  const caption = make("div", "pipenb-replay-caption");
  const graph = graphView(col);
  const head = make("div", "pipenb-replay-record");
  const diff = make("div", "pipenb-replay-diff");
  const state = make("div", "pipenb-replay-state");
  const events = make("div", "pipenb-replay-events-box");
  col.prepend(caption);
  col.append(head, diff, state, events);
  parent.append(col);

  function show(frame) {
    if (!frame || frame.i === undefined || frame.i < 0) {
      head.textContent = "no record";
      diff.innerHTML = state.innerHTML = events.innerHTML = "";
      return;
    }
    head.textContent = `#${frame.seq} ${frame.address} · ${frame.clock} · ${frame.took} · then ${frame.decision}`;
    head.classList.toggle("pipenb-replay-edit", !!frame.edit);
    diff.innerHTML = frame.diff_html || "";       // escaped by the kernel (pipenb.display)
    state.innerHTML = frame.state_html || "";
    events.innerHTML = frame.events_html || "";
    graph.apply(frame);
  }
  return { col, caption, graph, show };
}

// The bar: start, back, play, forward, end, the scrubber (with the mark where compared runs part),
// "record i / n" and the speed.
function controls() {
  const bar = make("div", "pipenb-replay-controls");
  const c = {
    bar,
    start: button("|◀", "jump to the start", "pipenb-replay-start"),
    back: button("◀", "one record back", "pipenb-replay-back"),
    play: button("▶ Play", "play / pause", "pipenb-replay-play"),
    fwd: button("▶", "one record forward", "pipenb-replay-forward"),
    end: button("▶|", "jump to the end", "pipenb-replay-end"),
    scrub: make("input", "pipenb-replay-scrubber"),
    split: make("div", "pipenb-replay-split"),
    where: make("span", "pipenb-replay-where"),
    speed: make("select", "pipenb-replay-speed"),
  };
  c.scrub.type = "range";
  c.scrub.min = "0";
  const track = make("div", "pipenb-replay-track");
  track.append(c.scrub, c.split);
  c.speed.title = "records a second while playing";
  for (const s of SPEEDS) c.speed.append(new Option(`${s}/s`, String(s)));
  bar.append(c.start, c.back, c.play, c.fwd, c.end, track, c.where, c.speed);
  return c;
}

// A time's x on a timeline whose axis has cuts (pipenb.timeline_gaps): data-map is "t:x t:x ..." breakpoints
// of a piecewise-linear map, times ascending; a time outside them is clamped to the plot.
function mapped(map, t) {
  const pts = map.split(" ").map((p) => p.split(":").map(Number));
  for (let i = 1; i < pts.length; i++) {
    const [ta, xa] = pts[i - 1], [tb, xb] = pts[i];
    if (t <= tb || i === pts.length - 1) {
      return tb > ta ? xa + (Math.min(Math.max(t, ta), tb) - ta) / (tb - ta) * (xb - xa) : xa;
    }
  }
  return pts[0][1];
}

// The run's timeline (pipenb.timeline), drawn once, with a line at the record's start. The SVG's root
// carries its scale (data-map with any cuts; else data-t0, data-span: seconds; data-x0, data-w: the plot).
function timelineView(host) {
  let marker = null;
  function draw(svgText) {
    host.innerHTML = svgText || "";  // made by the kernel, every text escaped
    const svg = host.querySelector("svg");
    marker = null;
    if (svg && svg.dataset.t0 !== undefined) {
      const h = svg.viewBox && svg.viewBox.baseVal ? svg.viewBox.baseVal.height : 100;
      marker = svgMake("line", { class: "pipenb-replay-marker", y1: 2, y2: h - 24, x1: 0, x2: 0 });
      svg.append(marker);
    }
  }
  function place(frame) {
    const svg = host.querySelector("svg");
    if (!marker || !svg || frame.started === undefined) return;
    const d = svg.dataset;
    const x = (d.map ? mapped(d.map, frame.started)
      : Number(d.x0) + (frame.started - Number(d.t0)) / Number(d.span) * Number(d.w)).toFixed(1);
    marker.setAttribute("x1", x);
    marker.setAttribute("x2", x);
  }
  return { draw, place };
}

// Moving the position: at once for a click, at most once a tick for the scrubber (the last one always
// sent), and a timer while `playing` that moves `speed` records a second, ten steps a second at most.
// Only a view on the page plays: JupyterLab renders the output again when the kernel refreshes its static
// snapshot (update_display_data) and leaves the old view alive, off the page, still listening; each of
// those running its own timer made Play N times too fast after N refreshes. `onPage()` says whether this
// view is the one shown.
function mover(model, onPage) {
  let timer = null, pending = null, sentAt = 0;
  const count = () => model.get("count") || 0;
  function go(i) {
    i = Math.max(0, Math.min(i, count() - 1));
    if (i === model.get("position")) return;
    model.set("position", i);
    model.save_changes();
  }
  function goSoon(i) {
    pending = i;
    const send = () => { if (pending !== null) { sentAt = Date.now(); go(pending); pending = null; } };
    const wait = TICK_MS - (Date.now() - sentAt);
    if (wait <= 0) send(); else setTimeout(send, wait);
  }
  function stopTimer() { if (timer !== null) { clearInterval(timer); timer = null; } }
  function setPlaying(on) {
    if (on && model.get("position") >= count() - 1) go(0);  // play at the end starts over
    model.set("playing", on);
    model.save_changes();
  }
  function sync() {  // `playing` or `speed` changed: (re)start or stop the timer
    stopTimer();
    if (!model.get("playing") || !onPage()) return;
    const perSecond = Number(model.get("speed")) || 5;
    const every = Math.max(TICK_MS, 1000 / perSecond);
    const step = Math.max(1, Math.round(perSecond * every / 1000));
    timer = setInterval(() => {
      if (!onPage()) { stopTimer(); return; }
      const next = model.get("position") + step;
      go(next);
      if (next >= count() - 1) setPlaying(false);
    }, every);
  }
  return { count, go, goSoon, setPlaying, sync, stopTimer };
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
  el.classList.add("pipenb-replay-root");
  const c = controls();
  const compare = make("div", "pipenb-replay-compare");
  const main = make("div", "pipenb-replay-main");
  const a = runColumn(main, "pipenb-replay-a");
  const b = runColumn(main, "pipenb-replay-b");
  const timelineBox = make("div", "pipenb-replay-timeline");
  el.append(c.bar, compare, main, timelineBox);
  const timeline = timelineView(timelineBox);
  const move = mover(model, () => life.alive() && el.isConnected);

  function drawStatic() {
    a.graph.load(model.get("svg"), model.get("edges"));
    a.caption.textContent = model.get("caption");
    const comparing = !!model.get("svg_b");
    b.col.style.display = compare.style.display = comparing ? "" : "none";
    if (comparing) {
      b.graph.load(model.get("svg_b"), model.get("edges_b"));
      b.caption.textContent = model.get("caption_b");
    }
    timeline.draw(model.get("timeline"));
    drawPosition();
    drawFrame();
  }
  function drawPosition() {
    const n = move.count(), i = model.get("position"), at = model.get("diverged_at");
    c.scrub.max = String(Math.max(n - 1, 0));
    c.scrub.value = String(i);
    c.scrub.disabled = n === 0;
    c.where.textContent = n ? `record ${i + 1} / ${n}` : "no record";
    c.split.style.display = at >= 0 && n > 1 ? "" : "none";
    if (at >= 0 && n > 1) c.split.style.left = `${(Math.min(at, n - 1) / (n - 1)) * 100}%`;
    el.classList.toggle("pipenb-replay-parted", at >= 0 && i >= at);
  }
  function drawFrame() {
    const frame = model.get("frame") || {};
    a.show(frame);
    timeline.place(frame);
    if (model.get("svg_b")) b.show(model.get("frame_b") || {});
    compare.innerHTML = model.get("compare_html") || "";  // escaped by the kernel
  }
  function drawPlaying() {
    const on = !!model.get("playing");
    c.play.textContent = on ? "⏸ Pause" : "▶ Play";
    el.classList.toggle("pipenb-replay-playing", on);
    c.speed.value = String(model.get("speed"));
    move.sync();
  }

  // Clicks only move the position (or start and stop playing); the kernel answers with the frame.
  const stop = () => { if (model.get("playing")) move.setPlaying(false); };
  c.start.addEventListener("click", () => { stop(); move.go(0); });
  c.end.addEventListener("click", () => { stop(); move.go(move.count() - 1); });
  c.back.addEventListener("click", () => { stop(); move.go(model.get("position") - 1); });
  c.fwd.addEventListener("click", () => { stop(); move.go(model.get("position") + 1); });
  c.play.addEventListener("click", () => move.setPlaying(!model.get("playing")));
  c.scrub.addEventListener("input", () => { stop(); move.goSoon(Number(c.scrub.value)); });
  c.speed.addEventListener("change", () => { model.set("speed", Number(c.speed.value)); model.save_changes(); });

  const handlers = [
    ["change:svg change:svg_b change:edges change:edges_b change:caption change:caption_b change:timeline", drawStatic],
    ["change:position change:count change:diverged_at", drawPosition],
    ["change:frame change:frame_b change:compare_html", drawFrame],
    ["change:playing change:speed", drawPlaying],
  ].map(([names, fn]) => [names, life.guard(fn)]);
  for (const [names, fn] of handlers) model.on(names, fn);
  drawStatic();
  // Node boxes are measured once the drawing is on screen: draw the frame again on the next frame.
  requestAnimationFrame(life.guard(() => { drawFrame(); drawPlaying(); }));
  function dispose() {
    move.stopTimer();
    for (const [names, fn] of handlers) model.off(names, fn);
    el.replaceChildren();
  }
  return life.retire;
}

export default { render };
