// PickTable view: a compact table; a click on a row picks it, a row's buttons send actions.
// Every cell is set with textContent, so user text is never parsed as HTML.
// Clicks and keys are heard once, on the table body (rows are redrawn, listeners are not re-added);
// render returns the cleanup anywidget calls when the view goes (or the module hot-reloads).
function make(tag, className) {
  const node = document.createElement(tag);
  node.className = className;
  return node;
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
  el.classList.add("pipenb-pick-root");
  const scroller = make("div", "pipenb-pick-scroll");
  const table = make("table", "pipenb-pick");
  const thead = table.createTHead();
  const tbody = table.createTBody();
  const empty = make("div", "pipenb-pick-empty");
  scroller.append(table, empty);
  el.append(scroller);

  function drawHead() {
    const tr = document.createElement("tr");
    for (const c of model.get("columns")) {
      const th = document.createElement("th");
      th.textContent = c;
      tr.append(th);
    }
    thead.replaceChildren(tr);
  }

  function pick(id) {
    model.set("value", id);
    model.save_changes();
  }

  function clicked(e) {
    const button = e.target.closest("button.pipenb-pick-action");
    const tr = e.target.closest("tr.pipenb-pick-row");
    if (!tr || !tbody.contains(tr)) return;
    if (button) {
      e.stopPropagation();
      model.send({ action: button.dataset.action, id: tr.dataset.id });
      return;
    }
    pick(tr.dataset.id);
  }

  function pressed(e) {
    const tr = e.target.closest("tr.pipenb-pick-row");
    if (tr && e.target === tr && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      pick(tr.dataset.id);
    }
  }

  function drawRows() {
    const picked = model.get("value");
    const rows = model.get("rows") || [];
    const frag = document.createDocumentFragment();
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.dataset.id = row.id;
      tr.className = "pipenb-pick-row" + (row.cls ? " " + row.cls : "") + (row.id === picked ? " pipenb-picked" : "");
      tr.tabIndex = 0;
      for (const cell of row.cells || []) {
        const td = document.createElement("td");
        td.textContent = cell === null || cell === undefined ? "" : String(cell);
        tr.append(td);
      }
      const actions = row.actions || [];
      if (model.get("columns").length > (row.cells || []).length) {
        const td = make("td", "pipenb-pick-actions");
        for (const action of actions) {
          const b = document.createElement("button");
          b.className = "pipenb-pick-action pipenb-pick-action-" + action;
          b.dataset.action = action;
          b.textContent = action;
          td.append(b);
        }
        tr.append(td);
      }
      frag.append(tr);
    }
    tbody.replaceChildren(frag);
    empty.textContent = rows.length ? "" : model.get("empty");
    empty.style.display = rows.length ? "none" : "";
  }

  function drawAll() {
    drawHead();
    drawRows();
  }

  const listening = new AbortController();
  tbody.addEventListener("click", clicked, { signal: listening.signal });
  tbody.addEventListener("keydown", pressed, { signal: listening.signal });
  const handlers = [["change:columns", drawAll], ["change:rows", drawRows], ["change:value", drawRows],
    ["change:empty", drawRows]].map(([name, fn]) => [name, life.guard(fn)]);
  for (const [name, fn] of handlers) model.on(name, fn);
  drawAll();
  function dispose() {
    for (const [name, fn] of handlers) model.off(name, fn);
    listening.abort();
    el.replaceChildren();
    el.classList.remove("pipenb-pick-root");
  }
  return life.retire;
}

export default { render };
