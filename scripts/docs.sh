#!/usr/bin/env bash
# Build the documentation site into docs/_build/html: pip install -e .[docs], then Sphinx with
# warnings as errors (an undocumented or unresolvable public name fails the build).
# The build needs no network: the demo notebooks run in a local kernel, nothing is fetched.
# PIPENB_NO_INSTALL=1: build with the default python3's packages as they are (no pip install).
# Extra arguments go to sphinx-build (e.g. -E to reread every page).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/steps.sh

if [ -n "${PIPENB_NO_INSTALL:-}" ]; then
  step 1 2 "pip install -e .[docs]: skipped (PIPENB_NO_INSTALL is set)"
else
  step 1 2 "pip install -e .[docs]: Sphinx, MyST-NB, Furo and what the notebooks import ..."
  pip_install_extra docs || exit 1
fi

step 2 2 "sphinx-build -W --keep-going -b html docs docs/_build/html (the notebooks run first when pipenb changed) ..."
python3 -m sphinx -W --keep-going -q -b html docs docs/_build/html "$@"
step_done
note "open docs/_build/html/index.html"
