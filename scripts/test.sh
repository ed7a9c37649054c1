#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run it.
# Usage: bash scripts/test.sh [pytest args...]
#
# Where a system program cannot be installed (no apt-get, not root and no sudo, no network),
# the script says so and goes on: pytest skips the tests needing that program, with the reason.
# No `set -e` on purpose: one missing package must not stop the tests that can run.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/steps.sh

N=4
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Programs some tests need beyond pip (see PROGRAMS in tests/conftest.py): program -> Debian package.
declare -A PACKAGE=([dot]=graphviz [chromium]=chromium)
missing_programs() { local p; for p in dot chromium; do command -v "$p" >/dev/null 2>&1 || echo "$p"; done; }
join() { local IFS=,; local s="$*"; echo "${s//,/, }"; }
show_log() { grep -v "Running pip as the 'root' user" "$log" | tail -n "${1:-20}" | sed 's/^/   | /'; }

# -- 1. system packages ------------------------------------------------------------------
mapfile -t need < <(missing_programs)
if [ ${#need[@]} -eq 0 ]; then
  step 1 $N "system packages: graphviz (dot), chromium: already installed"
else
  pkgs=()
  for p in "${need[@]}"; do pkgs+=("${PACKAGE[$p]}"); done
  step 1 $N "system packages: installing $(join "${pkgs[@]}") (for: $(join "${need[@]}")) with apt-get ..."
  cannot=""
  SUDO=()
  if ! command -v apt-get >/dev/null 2>&1; then
    cannot="there is no apt-get on this machine"
  elif [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      cannot="not root, and there is no sudo"
    elif [ -t 0 ]; then
      SUDO=(sudo); note "not root: using sudo (it may ask for your password)"
    else
      SUDO=(sudo -n)
    fi
  fi
  if [ -n "$cannot" ]; then
    note "cannot install: $cannot"
  else
    note "apt-get update ..."
    ${SUDO[@]+"${SUDO[@]}"} apt-get update -qq >"$log" 2>&1 || { note "apt-get update failed:"; show_log; }
    note "apt-get install ${pkgs[*]} (a fresh machine downloads a few hundred MB; this can take a minute) ..."
    if ! ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >"$log" 2>&1; then
      note "apt-get install failed:"; show_log
    fi
  fi
  mapfile -t still < <(missing_programs)
  if [ ${#still[@]} -eq 0 ]; then
    step_done "installed"
  else
    step_done "gave up"
    for p in "${still[@]}"; do note "MISSING: $p (apt-get install ${PACKAGE[$p]})"; done
    note "the tests needing $(join "${still[@]}") will be SKIPPED (pytest lists them with the reason); the others run"
    if [ "${CI:-}" = true ]; then
      echo "!! WARNING (CI): $(join "${still[@]}") could not be installed: this run will NOT test everything."
    fi
  fi
fi

# -- 2. Python packages ------------------------------------------------------------------
what=$(python3 - 2>/dev/null <<'EOF'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
names = lambda reqs: list(dict.fromkeys(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0] for r in reqs))
extras = project["optional-dependencies"]
deps = names(project["dependencies"])
more = [n for n in names(extras["dev"] + extras["lab"]) if n not in deps]
print(f"pipenb, its dependencies ({', '.join(deps)}) and the dev/lab extras ({', '.join(more)})")
EOF
) || what="pipenb with its dev and lab extras (see pyproject.toml)"
step 2 $N "pip install -e .[dev,lab] ..."
note "$what"
note "playwright is only the Python package: the browser tests use Debian's chromium, nothing is downloaded for it"
pip_ok=1
if ! python3 -m pip install -q --disable-pip-version-check -e ".[dev,lab]" >"$log" 2>&1; then
  pip_ok=0
  note "pip install failed:"; show_log 30
fi
python3 -c "import playwright" >/dev/null 2>&1 || note "MISSING: playwright (Python package): the browser tests will be SKIPPED"
if ! python3 -c "import pipenb, pytest" >/dev/null 2>&1; then
  step_done "failed"
  note "pipenb or pytest cannot be imported: no test can run"
  exit 1
fi
[ $pip_ok = 1 ] && step_done || step_done "failed, going on with what is installed"

# -- 3. lint -----------------------------------------------------------------------------
step 3 $N "ruff check . ..."
python3 -m ruff check .
ruff_rc=$?
[ $ruff_rc = 0 ] && step_done || step_done "FAILED"

# -- 4. tests ----------------------------------------------------------------------------
mapfile -t still < <(missing_programs)
python3 -c "import playwright" >/dev/null 2>&1 || still+=(playwright)
step 4 $N "pytest $* ..."
[ ${#still[@]} -gt 0 ] && note "not installed: $(join "${still[@]}"): the tests needing them are skipped (see SKIPPED below)"
python3 -m pytest "$@"
pytest_rc=$?
step_done "pytest exit code $pytest_rc"

# -- summary -----------------------------------------------------------------------------
echo
echo "== done in $(elapsed_total): ruff $([ $ruff_rc = 0 ] && echo ok || echo FAILED), pytest $([ $pytest_rc = 0 ] && echo ok || echo "exit $pytest_rc")"
if [ ${#still[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "!! ================================================================================"
    echo "!! WARNING (CI): could not install $(join "${still[@]}")."
    echo "!! The tests needing them were SKIPPED: this run did not test everything."
    echo "!! ================================================================================"
  else
    echo "   not installed: $(join "${still[@]}"): the tests needing them were skipped"
  fi
fi
[ $pytest_rc != 0 ] && exit $pytest_rc
exit $ruff_rc
