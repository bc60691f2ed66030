#!/usr/bin/env bash
# stop-dovecot.sh BASE_DIR - stop the Dovecot that start-dovecot.sh started there.
# Default: SIGTERM and wait (Dovecot takes ~1.1 s). STOP_FAST=1: SIGKILL the master and its
# children (~40 ms; fine for throw-away rigs).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BASE_DIR" >&2; exit 1; }
BASE=$(cd "$1" && pwd -P); PIDF="$BASE/run/master.pid"
# Alive = exists and is not a zombie (in containers whose PID 1 does not reap, a dead
# daemon stays a zombie and kill -0 still succeeds).
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }
[ -f "$PIDF" ] || exit 0
PID=$(cat "$PIDF")
# Only signal it if it really is the master of this config.
if ! alive "$PID" || ! tr '\0' ' ' < "/proc/$PID/cmdline" | grep -q -- "-c $BASE/dovecot.conf"; then
  rm -f "$PIDF"; exit 0
fi
if [ "${STOP_FAST:-0}" = 1 ]; then
  KIDS=$(for s in /proc/[0-9]*/stat; do
           read -r line < "$s" 2>/dev/null || continue
           set -- ${line##*) }; [ "$2" = "$PID" ] && { p=${s#/proc/}; echo "${p%/stat}"; }
         done; true)
  kill -KILL "$PID" $KIDS 2>/dev/null || true
  rm -f "$PIDF"; exit 0
fi
kill -TERM "$PID"
for _ in $(seq 500); do alive "$PID" || exit 0; sleep 0.02; done
kill -KILL "$PID" 2>/dev/null || true
