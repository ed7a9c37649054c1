#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run it on every Python in PYTHONS.
# Usage: bash scripts/test.sh [pytest args...]
#
# - The default python3 runs the whole suite, the browser tests included.
# - Every other Python in PYTHONS runs it without the browser tests (-m "not needs_chromium") in its own
#   venv, .venv-pyX.Y/ in the repo (git-ignored, reused when present), made from pyenv's pythonX.Y or
#   pythonX.Y on PATH, with `pip install -e .[dev,lab]`; its `python3` Jupyter kernel is that venv's python.
#   The venv of IPYKERNEL6_ON gets ipykernel 6.29 (the oldest pipenb supports), the others ipykernel 7.x.
# - After ruff, the docs site is built (scripts/docs.sh: the docs extra into the default python3 only,
#   sphinx-build -W), so an undocumented public name fails the run.
# - A Python that cannot be found is reported loudly (a warning block in CI), never skipped silently.
# - PIPENB_NO_INSTALL=1: no `pip install -e .` into the default python3 (e.g. when its editable install
#   must keep pointing at another checkout); the .venv-pyX.Y venvs are still set up.
# - PIPENB_PYTHONS="3.11 3.13" bash scripts/test.sh  runs only those Pythons (CI warns that it is set).
# - The exit code is non-zero when ruff, the docs build or any Python's run fails.
#
# Where a system program cannot be installed (no apt-get, not root and no sudo, no network),
# the script says so and goes on: pytest skips the tests needing that program, with the reason.
# No `set -e` on purpose: one missing package must not stop the tests that can run.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/steps.sh

# The Pythons pipenb is tested on. pyproject.toml's classifiers and requires-python must say exactly
# these (tests/e2e/test_python_versions.py reads both files).
PYTHONS=(3.10 3.11 3.12 3.13)
IPYKERNEL6_ON=3.10  # this Python's venv gets ipykernel 6.29.x (the oldest supported); the other venvs get ipykernel>=7

DEFAULT=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
WANTED=(${PIPENB_PYTHONS:-${PYTHONS[*]}})
OTHERS=()
for v in "${WANTED[@]}"; do [ "$v" != "$DEFAULT" ] && OTHERS+=("$v"); done
N=$((5 + 2 * ${#OTHERS[@]}))
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
step 2 $N "pip install -e .[dev,lab] into the default python3 (Python $DEFAULT) ..."
note "$what"
note "playwright is only the Python package: the browser tests use Debian's chromium, nothing is downloaded for it"
pip_ok=1
if [ -n "${PIPENB_NO_INSTALL:-}" ]; then
  note "PIPENB_NO_INSTALL is set: not installing, using the default python3's packages as they are"
elif ! python3 -m pip install -q --disable-pip-version-check -e ".[dev,lab]" >"$log" 2>&1; then
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

# -- 4. docs -----------------------------------------------------------------------------
# The site builds with warnings as errors (a public name without a docstring or missing from the API
# reference fails it), offline. Only the default python3 gets the docs extra.
step 4 $N "docs: pip install -e .[docs] and sphinx-build -W (scripts/docs.sh) ..."
if bash scripts/docs.sh >"$log" 2>&1; then
  docs_rc=0
  step_done
else
  docs_rc=1
  step_done "FAILED"
  show_log 40
fi

# -- 5... tests on each Python -----------------------------------------------------------
mapfile -t still < <(missing_programs)
python3 -c "import playwright" >/dev/null 2>&1 || still+=(playwright)
out=$(mktemp)
trap 'rm -f "$log" "$out"' EXIT
color=(); [ -t 1 ] && color=(--color=yes)
SUMMARY=()   # one line per Python
MISSING=()   # Pythons of PYTHONS that could not be tested
first_rc=0   # exit code of the first pytest run (or venv setup) that failed
fail() { [ "$first_rc" = 0 ] && first_rc=${1:-1}; }
plain() { sed 's/\x1b\[[0-9;]*m//g'; }
# pytest's last line ("12 passed, 3 skipped in 40.12s") without the ='s around it.
pytest_line() { plain <"$1" | grep -E '^=* ?(no tests ran|[0-9]+ (passed|failed|skipped|deselected|errors?))' | tail -n 1 | sed -E 's/^=+ //; s/ =+$//'; }
versions() { "$1" -c 'import sys, ipykernel; print(sys.version.split()[0], ipykernel.__version__)' 2>/dev/null || echo "? ?"; }

# run_suite PYTHON VENV WHAT [pytest args...]: runs pytest with PYTHON (VENV's bin first on PATH when
# VENV is given) and adds its line to SUMMARY.
run_suite() {
  local py=$1 venv=$2 what=$3 t0 rc pyv ikv result
  shift 3
  t0=$(_now_ms)
  if [ -n "$venv" ]; then
    env PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" "$py" -m pytest ${color[@]+"${color[@]}"} "$@" 2>&1 | tee "$out"
  else
    "$py" -m pytest ${color[@]+"${color[@]}"} "$@" 2>&1 | tee "$out"
  fi
  rc=${PIPESTATUS[0]}
  read -r pyv ikv < <(versions "$py")
  if [ "$rc" = 0 ]; then result="ok"; else result="FAILED (exit $rc)"; fail "$rc"; fi
  SUMMARY+=("$(printf 'Python %-8s ipykernel %-7s %-22s pytest %s: %s [%s]' "$pyv" "$ikv" "$what" "$result" \
    "$(pytest_line "$out")" "$(_fmt_ms $(($(_now_ms) - t0)))")")
  step_done "pytest exit code $rc"
}

# find_python X.Y: the path of a CPython X.Y (pyenv's newest X.Y.Z, else pythonX.Y on PATH), or nothing.
find_python() {
  local v=$1 root c
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for c in $(ls -d "$root"/versions/"$v".*/bin/python3 2>/dev/null | grep -E "/$v\.[0-9]+/bin/" | sort -V -r) \
           $(command -v "python$v" 2>/dev/null); do
    if [ "$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$v" ]; then
      echo "$c"; return
    fi
  done
}

# setup_venv X.Y PYTHON: makes (or reuses) .venv-pyX.Y with pipenb[dev,lab] and its own python3 kernel.
setup_venv() {
  local v=$1 py=$2 venv=$PWD/.venv-py$1 kernel
  if [ -x "$venv/bin/python" ] && [ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$v" ]; then
    note "reusing .venv-py$v"
  else
    rm -rf "$venv"
    note "creating .venv-py$v from $py ..."
    "$py" -m venv "$venv" >"$log" 2>&1 || { note "python -m venv failed:"; show_log; return 1; }
  fi
  if [ "$v" = "$IPYKERNEL6_ON" ]; then kernel="ipykernel==6.29.*"; else kernel="ipykernel>=7"; fi
  note "pip install -e .[dev,lab] \"$kernel\" (pip's wheel cache makes a second venv quick) ..."
  if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev,lab]" "$kernel" >"$log" 2>&1; then
    note "pip install failed:"; show_log 30; return 1
  fi
  # The tests start kernels named "python3": in this venv that must be this venv's python.
  "$venv/bin/python" -m ipykernel install --sys-prefix >"$log" 2>&1 || { note "ipykernel install failed:"; show_log; return 1; }
  PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" check_kernel "$venv/bin/python"
}

# check_kernel PYTHON: prints which python the kernel named "python3" runs when PYTHON's jupyter_client
# starts it; fails when that is not PYTHON itself (tests/e2e/test_python_versions.py checks it in a kernel).
check_kernel() {
  "$1" - <<'PY'
import os, shutil, sys
from jupyter_client.kernelspec import KernelSpecManager
spec = KernelSpecManager().get_kernel_spec("python3")
exe = spec.argv[0]
if exe in ("python", "python%d" % sys.version_info[0], "python%d.%d" % sys.version_info[:2]):
    exe = sys.executable  # jupyter_client starts these with the client's own python
exe = os.path.abspath(shutil.which(exe) or exe)
print(f"   kernel python3: {spec.resource_dir} -> {exe}")
if exe != os.path.abspath(sys.executable):
    sys.exit(f"   !! the python3 kernel does not run {sys.executable}: see `jupyter kernelspec list`")
PY
}

i=5
if [ "$DEFAULT" = none ]; then
  step $i $N "default python3: cannot run it: no test can run"; fail 1
elif [[ " ${WANTED[*]} " == *" $DEFAULT "* ]]; then
  step $i $N "Python $DEFAULT (the default python3): pytest $* (the whole suite, browser tests included) ..."
  [ ${#still[@]} -gt 0 ] && note "not installed: $(join "${still[@]}"): the tests needing them are skipped (see SKIPPED below)"
  [[ " ${PYTHONS[*]} " == *" $DEFAULT "* ]] || note "!! the default python3 ($DEFAULT) is not one of the tested Pythons (${PYTHONS[*]})"
  check_kernel "$(python3 -c 'import sys; print(sys.executable)')" || fail 1
  run_suite python3 "" "whole suite" "$@"
else
  step $i $N "Python $DEFAULT (the default python3): not in PIPENB_PYTHONS, not run"
fi

for v in "${OTHERS[@]}"; do
  i=$((i + 1))
  step $i $N "Python $v: venv .venv-py$v ..."
  py=$(find_python "$v")
  if [ -z "$py" ]; then
    step_done "MISSING"
    note "!! no Python $v: looked for $(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")/versions/$v.*/bin/python3 and python$v on PATH"
    note "!! install it (pyenv install $v) to test on it"
    MISSING+=("$v")
    SUMMARY+=("$(printf 'Python %-8s NOT TESTED: no interpreter found (pyenv install %s)' "$v" "$v")")
    i=$((i + 1))
    continue
  fi
  if ! setup_venv "$v" "$py"; then
    step_done "FAILED"
    fail 1
    SUMMARY+=("$(printf 'Python %-8s FAILED: could not set up .venv-py%s (see step %s above)' "$v" "$v" "$i")")
    i=$((i + 1))
    continue
  fi
  step_done
  i=$((i + 1))
  step $i $N "Python $v: pytest $* -m \"not needs_chromium\" (the suite without the browser tests) ..."
  run_suite "$PWD/.venv-py$v/bin/python" "$PWD/.venv-py$v" "no browser tests" "$@" -m "not needs_chromium"
done

# -- summary -----------------------------------------------------------------------------
echo
echo "== done in $(elapsed_total): ruff $([ $ruff_rc = 0 ] && echo ok || echo FAILED), docs $([ $docs_rc = 0 ] && echo ok || echo FAILED)"
for line in ${SUMMARY[@]+"${SUMMARY[@]}"}; do echo "== $line"; done
kernels=$(printf '%s\n' ${SUMMARY[@]+"${SUMMARY[@]}"} | sed -nE 's/.* ipykernel ([0-9]+)\..*/\1/p' | sort -u | tr '\n' ' ')
warn=()
[ ${#still[@]} -gt 0 ] && warn+=("could not install $(join "${still[@]}"): the tests needing them were SKIPPED.")
[ ${#MISSING[@]} -gt 0 ] && warn+=("no interpreter for Python $(join "${MISSING[@]}"): the suite did NOT run on it.")
if [ -n "${PIPENB_PYTHONS:-}" ]; then
  warn+=("PIPENB_PYTHONS=\"$PIPENB_PYTHONS\": only those Pythons were tested (all: ${PYTHONS[*]}).")
elif [[ " $kernels " != *" 6 "* || " $kernels " != *" 7 "* ]]; then
  warn+=("ipykernel 6.29 and 7.x were not both tested (tested majors: ${kernels:-none}).")
fi
if [ ${#warn[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "!! ================================================================================"
    for w in "${warn[@]}"; do echo "!! WARNING (CI): $w"; done
    echo "!! This run did not test everything."
    echo "!! ================================================================================"
  else
    for w in "${warn[@]}"; do echo "   !! $w"; done
  fi
fi
[ "$first_rc" != 0 ] && exit "$first_rc"
[ $ruff_rc != 0 ] && exit $ruff_rc
exit $docs_rc
