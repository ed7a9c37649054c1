#!/usr/bin/env bash
# Install pipenb with JupyterLab and open the demo notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e ".[lab]" 2>&1 | grep -v "Running pip as the 'root' user" || true
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)
exec python3 -m jupyter lab "${extra[@]}" notebooks/01-quickstart.ipynb "$@"
