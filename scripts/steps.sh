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
