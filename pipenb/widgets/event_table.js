// EventTable view: filters and counts on top, the newest rows at the bottom.
// Every cell is set with textContent, so user text is never parsed as HTML.
// render returns the cleanup anywidget calls when the view goes (or the module hot-reloads):
// model and DOM listeners off, the view's nodes and classes removed.
function make(tag, className) {
  const node = document.createElement(tag);
  node.className = className;
  return node;
}

// Milliseconds as people read them: "0.07 ms", "12 ms", "1.25 s", "2:05 min".
function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1) return ms.toFixed(2) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(2) + " s";
  const s = Math.floor(ms / 1000);
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0") + " min";
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
  el.classList.add("pipenb-events-root");
  const bar = make("div", "pipenb-events-bar");
  const eventSelect = make("select", "pipenb-event-filter");
  const all = new Option("all events", "");
  eventSelect.append(all);
  for (const name of model.get("event_names")) eventSelect.append(new Option(name, name));
  const stageInput = make("input", "pipenb-stage-filter");
  stageInput.placeholder = "filter by stage";
  const counts = make("span", "pipenb-event-counts");
  const note = make("div", "pipenb-event-note");
  bar.append(eventSelect, stageInput, counts);

  const scroller = make("div", "pipenb-events-scroll");
  const table = make("table", "pipenb-events");
  const thead = table.createTHead();
  const head = thead.insertRow();
  for (const c of model.get("columns")) {
    const th = document.createElement("th");
    th.textContent = c;
    head.append(th);
  }
  const tbody = table.createTBody();
  scroller.append(table);
  el.append(bar, note, scroller);

  const listening = new AbortController();  // every DOM listener of this view, removed at once
  eventSelect.addEventListener("change", () => {
    model.set("event_filter", eventSelect.value ? [eventSelect.value] : []);
    model.save_changes();
  }, { signal: listening.signal });
  stageInput.addEventListener("input", () => {
    model.set("stage_filter", stageInput.value);
    model.save_changes();
  }, { signal: listening.signal });

  function drawRows() {
    const stick = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 4;
    // One JSON string, not nested lists: the kernel serialises it at C speed.
    const rows = JSON.parse(model.get("rows_json") || "[]");
    const frag = document.createDocumentFragment();
    for (const row of rows) {
      // A row: time, elapsed ms, event, path, stage, step, duration ms, detail. Shown: the elapsed time as
      // the time's tooltip, the duration with its unit.
      const tr = document.createElement("tr");
      tr.dataset.event = row[2];
      tr.className = "pipenb-row-" + row[2].replace(":", "-");
      const cells = [row[0], row[2], row[3], row[4], row[5], duration(row[6]), row[7]];
      cells.forEach((cell, i) => {
        const td = document.createElement("td");
        td.textContent = cell === null || cell === undefined ? "" : String(cell);
        if (i === 0 && row[1] !== null) td.title = "+" + duration(row[1]) + " since the first event";
        tr.append(td);
      });
      frag.append(tr);
    }
    tbody.replaceChildren(frag);
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }

  function drawCounts() {
    const c = model.get("counts");
    const parts = Object.keys(c).sort().map((k) => k + " " + c[k]);
    counts.textContent = "showing " + model.get("shown") + " of " + model.get("total") +
      (parts.length ? " · " + parts.join(" · ") : "");
    note.textContent = model.get("note");
  }

  const handlers = [["change:rows_json", drawRows], ["change:counts", drawCounts],
    ["change:shown", drawCounts], ["change:note", drawCounts]].map(([name, fn]) => [name, life.guard(fn)]);
  for (const [name, fn] of handlers) model.on(name, fn);
  drawRows();
  drawCounts();
  function dispose() {
    for (const [name, fn] of handlers) model.off(name, fn);
    listening.abort();
    el.replaceChildren();
    el.classList.remove("pipenb-events-root");
  }
  return life.retire;
}

export default { render };
