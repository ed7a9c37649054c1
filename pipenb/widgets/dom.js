// Helpers every pipenb view shares; prepended to each view's module (pipenb.widgets.esm.view_module).

function make(tag, className) {
  const node = document.createElement(tag);
  node.className = className;
  return node;
}

