#!/usr/bin/env bash
# Install pipenb with everything the demo notebooks use, and open them in JupyterLab.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/steps.sh

# Graphviz's `dot` draws nicer stage graphs; without it pipenb uses its own layout.
if command -v dot >/dev/null 2>&1; then
  step 1 3 "system packages: graphviz (dot): already installed"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  step 1 3 "system packages: apt-get install graphviz (dot, for nicer stage graphs) ..."
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends graphviz \
    >/dev/null); then
    step_done
  else
    step_done "failed"
    note "graphviz not installed: stage graphs use pipenb's built-in layout"
  fi
else
  step 1 3 "system packages: graphviz (dot): not installed, and not root with apt-get to install it"
  note "stage graphs use pipenb's built-in layout (apt-get install graphviz for dot's)"
fi

# The `notebooks` extra is everything the demo notebooks import (JupyterLab, numpy, a local Dask cluster);
# tests/e2e/test_newcomer.py fails if a notebook imports a module this line does not install.
step 2 3 "pip install -e .[notebooks]: pipenb with JupyterLab, numpy and Dask (all the notebooks import) ..."
if ! pip_install_extra notebooks; then
  note "the notebooks need these packages: fix the error above and run this script again"
  exit 1
fi

extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)
step 3 3 "jupyter lab notebooks/01-quickstart.ipynb (the other notebooks are in notebooks/; Ctrl-C stops it)"
exec python3 -m jupyter lab "${extra[@]}" notebooks/01-quickstart.ipynb "$@"
