#!/usr/bin/env bash
# Install pipenb with JupyterLab and open the demo notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
# Graphviz's `dot` draws nicer stage graphs; without it pipenb uses its own layout.
if ! command -v dot >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends graphviz \
    >/dev/null) || echo "graphviz not installed: stage graphs use pipenb's built-in layout"
fi
python3 -m pip install -q --disable-pip-version-check -e ".[lab]" 2>&1 | grep -v "Running pip as the 'root' user" || true
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)
exec python3 -m jupyter lab "${extra[@]}" notebooks/01-quickstart.ipynb "$@"
