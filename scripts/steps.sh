# Step messages with timings for scripts/test.sh and scripts/demo.sh (sourced, not run).
#   step 2 4 "pip install ..."   prints "== [2/4] pip install ..." and starts the step's clock
#   step_done                     prints "   done in 3.2 s"
#   note "text"                   prints an indented line under the current step

_now_ms() {
  # bash >= 5 has EPOCHREALTIME (microseconds); older bash falls back to whole seconds.
  if [ -n "${EPOCHREALTIME:-}" ]; then
    local us=${EPOCHREALTIME//[!0-9]/}
    echo $((us / 1000))
  else
    echo $((SECONDS * 1000))
  fi
}

_fmt_ms() { printf '%d.%d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }

STEPS_T0=$(_now_ms)
STEP_T0=$STEPS_T0

step() {
  printf '\n== [%s/%s] %s\n' "$1" "$2" "$3"
  STEP_T0=$(_now_ms)
}

step_done() { printf '   %s in %s\n' "${1:-done}" "$(_fmt_ms $(($(_now_ms) - STEP_T0)))"; }

note() { printf '   %s\n' "$*"; }

elapsed_total() { _fmt_ms $(($(_now_ms) - STEPS_T0)); }

# pip_install_extra EXTRA: `pip install -e .[EXTRA]` quietly; on failure the log's tail, and a non-zero status.
pip_install_extra() {
  local log
  log=$(mktemp)
  if python3 -m pip install -q --disable-pip-version-check -e ".[$1]" >"$log" 2>&1; then
    rm -f "$log"
    step_done
    return 0
  fi
  step_done "FAILED"
  grep -v "Running pip as the 'root' user" "$log" | tail -n 30 | sed 's/^/   | /'
  rm -f "$log"
  return 1
}
