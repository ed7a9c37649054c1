// KernelWatch view: when the kernel behind this widget goes (restart, death), mark the dashboard around it
// as a snapshot: greyed out, its controls disabled, a line saying why and what to do.
const STATUS_GONE = { restarting: "was restarted", autorestarting: "was restarted", dead: "died" };

function render({ model, el }) {
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

  const onComm = () => markGone("is gone (restarted or shut down)");
  model.on("comm_live_update", onComm);
  const manager = model.widget_manager;
  const kernel = manager && manager.kernel;
  const onStatus = (_sender, status) => {
    if (STATUS_GONE[status]) markGone(STATUS_GONE[status]);
  };
  if (kernel && kernel.statusChanged) kernel.statusChanged.connect(onStatus);
  if (kernel && STATUS_GONE[kernel.status]) markGone(STATUS_GONE[kernel.status]);
  return () => {
    model.off("comm_live_update", onComm);
    if (kernel && kernel.statusChanged) kernel.statusChanged.disconnect(onStatus);
    el.replaceChildren();
    el.classList.remove("pipenb-kernel-watch");
  };
}

export default { render };
