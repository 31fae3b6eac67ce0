#!/usr/bin/env bash
# The background CPU trainer: trains a model folder's parts in order at
# `nice 19`, each stage for at most its planned seconds, with checkpoints
# every few minutes in a cache outside the repository (a run cut off loses
# minutes; re-running resumes every stage from its checkpoint).
#
#   scripts/train_background.sh start [MODEL] [PRESET]   # detached; log in the cache
#   scripts/train_background.sh run   [MODEL] [PRESET]   # the same, in the foreground
#   scripts/train_background.sh pause | resume            # SIGSTOP / SIGCONT, around timings
#   scripts/train_background.sh stop | status
#
# MODEL defaults to models/default; a missing folder is made with
# `init --preset PRESET` (default cpu). Stages: ae (for the exact latent:
# its statistics), grm, texture, rtm, dit, calibrate; STAGES (environment,
# space-separated) picks a subset. Seconds per stage: T_AE T_GRM T_TEXTURE
# T_DIT (defaults 1200 / 1800 / 300 / 1500). Batch, crop and learning rate
# per stage: $TRAIN_CONFIGS/<part>.toml (default scripts/train; the
# exact-latent model's are in scripts/train/s2d, which run by time).
# Weights are written into MODEL as float32 by each stage; `patchscaler
# convert --half` makes the shipped copy, and nothing is committed here:
# evaluate first (scripts/eval_default.sh) and commit only what is better.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
cd "$PS_ROOT"
cache=${PS_TRAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patchscaler}
mkdir -p "$cache"
pidfile=$cache/train_background.pid
cmd=${1:-status}
model=${2:-models/default}
preset=${3:-cpu}
runs=$cache/runs/$(basename "$model")

group() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"; }

case $cmd in
  start)
    if pid=$(group); then echo "already running (process group $pid)"; exit 1; fi
    setsid nohup "$0" run "$model" "$preset" >"$cache/train_background.log" 2>&1 &
    echo $! >"$pidfile"
    echo "started (process group $!), log: $cache/train_background.log"
    exit 0 ;;
  pause|resume|stop)
    pid=$(group) || { echo "not running"; exit 0; }
    sig=$([ "$cmd" = pause ] && echo STOP || ([ "$cmd" = resume ] && echo CONT || echo TERM))
    [ "$cmd" = stop ] && kill -CONT -- "-$pid" 2>/dev/null || true
    kill "-$sig" -- "-$pid"
    echo "$cmd: sent SIG$sig to process group $pid"
    exit 0 ;;
  status)
    if pid=$(group); then
      state=$(ps -o stat= -p "$pid" | head -c1)
      echo "running (process group $pid$([ "$state" = T ] && echo ', paused'))"; tail -n 3 "$cache/train_background.log"
    else echo "not running"; fi
    exit 0 ;;
  run) ;;
  *) echo "usage: $0 start|run|pause|resume|stop|status [MODEL] [PRESET]" >&2; exit 2 ;;
esac

cargo build --release --quiet
# A private copy: a rebuild while this runs for hours must not swap the
# binary under it.
ps=$cache/patchscaler.$$
cp target/release/patchscaler "$ps"
trap 'rm -f "$ps"' EXIT
data=data/manifest.csv
[ -f "$data" ] || "$here/fetch_data.sh"
[ -d "$model" ] || $ps init --preset "$preset" -o "$model"
mkdir -p "$runs"
kind=$(grep -m1 '^kind' "$model/model.toml" | cut -d'"' -f2 || true)
stages=${STAGES:-ae grm texture rtm dit calibrate}
train() { # part, seconds, flags...
  local part=$1 secs=$2; shift 2
  echo "== $(date -u +%FT%TZ) $part for at most ${secs} s"
  nice -n 19 $ps train "$part" --model "$model" --data $data --out "$runs/$part" \
    --time-limit "$secs" --config "${TRAIN_CONFIGS:-scripts/train}/$part.toml" --quiet "$@"
}
for stage in $stages; do
  case $stage in
    ae)
      if [ "$kind" = space_to_depth ]; then
        nice -n 19 $ps train ae --model "$model" --data $data --out "$runs/ae" --steps 32 --batch 8 --crop 128
      else
        train ae "${T_AE:-1200}" --batch 8 --crop 128 --lr 1e-4 --decoder-only
      fi ;;
    grm) train grm "${T_GRM:-1800}" ;;
    texture) train texture "${T_TEXTURE:-300}" --no-grm ;;
    rtm) nice -n 19 $ps train rtm --model "$model" --data $data --candidates "${RTM_CANDIDATES:-2000}" ;;
    dit) train dit "${T_DIT:-1500}" ;;
    calibrate) nice -n 19 $ps calibrate --model "$model" --data $data --shares 0.5,0.25 ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
echo "== $(date -u +%FT%TZ) done: $stages"
