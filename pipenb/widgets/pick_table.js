// PickTable view: a compact table; a click on a row picks it, a row's buttons send actions.
// Every cell is set with textContent, so user text is never parsed as HTML.
function render({ model, el }) {
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
          b.textContent = action;
          b.addEventListener("click", (e) => {
            e.stopPropagation();
            model.send({ action, id: row.id });
          });
          td.append(b);
        }
        tr.append(td);
      }
      tr.addEventListener("click", () => pick(row.id));
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(row.id); } });
      frag.append(tr);
    }
    tbody.replaceChildren(frag);
    empty.textContent = rows.length ? "" : model.get("empty");
    empty.style.display = rows.length ? "none" : "";
  }

  model.on("change:columns", () => { drawHead(); drawRows(); });
  model.on("change:rows", drawRows);
  model.on("change:value", drawRows);
  model.on("change:empty", drawRows);
  drawHead();
  drawRows();
}

export default { render };
