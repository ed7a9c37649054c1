// KernelWatch view: when the kernel behind this widget goes (restart, death), mark the dashboard around it
// as a snapshot: greyed out, its controls disabled, a line saying why and what to do.
const STATUS_GONE = { restarting: "was restarted", autorestarting: "was restarted", dead: "died" };

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
  el.classList.add("pipenb-kernel-watch");
  const note = document.createElement("div");
  note.className = "pipenb-kernel-gone-note";
  el.append(note);
  let gone = false;

  function markGone(why) {
    if (gone) return;
    gone = true;
    const root = el.closest(".pipenb-dashboard") || el.parentElement;
    note.textContent = "⚠ The kernel " + why + ": this dashboard shows its last snapshot and its buttons do " +
      "nothing any more. Run its cell again for a live dashboard.";
    if (!root) return;
    root.classList.add("pipenb-kernel-gone");
    for (const control of root.querySelectorAll("button, input, select, textarea")) control.disabled = true;
  }

  const onComm = life.guard(() => markGone("is gone (restarted or shut down)"));
  model.on("comm_live_update", onComm);
  const manager = model.widget_manager;
  const kernel = manager && manager.kernel;
  const onStatus = life.guard((_sender, status) => {
    if (STATUS_GONE[status]) markGone(STATUS_GONE[status]);
  });
  if (kernel && kernel.statusChanged) kernel.statusChanged.connect(onStatus);
  if (kernel && STATUS_GONE[kernel.status]) markGone(STATUS_GONE[kernel.status]);
  function dispose() {
    model.off("comm_live_update", onComm);
    if (kernel && kernel.statusChanged) kernel.statusChanged.disconnect(onStatus);
    el.replaceChildren();
    el.classList.remove("pipenb-kernel-watch");
  }
  return life.retire;
}

export default { render };
