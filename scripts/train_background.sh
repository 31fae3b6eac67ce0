#!/usr/bin/env bash
# The background CPU trainer: trains a model folder's parts at `nice 19`,
# each stage for at most its planned seconds, with checkpoints every few
# minutes in a cache outside the repository (a run cut off loses minutes;
# re-running resumes every stage from its checkpoint). After each round it
# evaluates the model on the validation split (three protocols) and keeps
# it as the accepted candidate only if it is better than the last accepted
# one (at first: the committed models/default) on every protocol
# (`patchscaler compare`: no metric worse, one better, beyond noise).
#
#   scripts/train_background.sh start [MODEL] [PRESET]   # detached; log in the cache
#   scripts/train_background.sh run   [MODEL] [PRESET]   # the same, in the foreground
#   scripts/train_background.sh pause | resume            # SIGSTOP / SIGCONT, around timings
#   scripts/train_background.sh stop | status
#   scripts/train_background.sh commit                    # the accepted candidate -> models/default, git commit with its table
#
# MODEL (a training copy, float32, outside the repository is best) defaults
# to models/default; a missing folder is made with `init --preset PRESET`
# (default cpu). Stages: ae (for the exact latent: its statistics), grm,
# texture, rtm, dit, calibrate. Without STAGES (environment,
# space-separated), each round trains grm and dit, the one furthest from its
# target first (`compare --plan` on the last evaluation), then calibrates;
# ROUNDS (default: until stopped) bounds the rounds. Seconds per stage:
# T_AE T_GRM T_TEXTURE T_DIT (defaults 1200 / 1800 / 300 / 1500). Batch,
# crop and learning rate per stage: $TRAIN_CONFIGS/<part>.toml (default
# scripts/train; the exact-latent model's are in scripts/train/s2d, which
# run by time). A rejected round is not undone: the next one continues from
# its weights (more training is the cure), only the accepted copy is gated.
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
accepted=$cache/accepted

group() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"; }

case $cmd in
  start)
    if pid=$(group); then echo "already running (process group $pid)"; exit 1; fi
    setsid nohup "$0" run "$model" "$preset" >>"$cache/train_background.log" 2>&1 &
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
    [ -d "$accepted/model" ] && echo "accepted candidate: $accepted/model ($(cat "$accepted/rounds") rounds; scripts/train_background.sh commit)"
    exit 0 ;;
  commit)
    [ -d "$accepted/model" ] || { echo "no accepted candidate in $accepted" >&2; exit 1; }
    [ -f "$accepted/committed" ] && { echo "the accepted candidate is already committed ($(cat "$accepted/committed"))" >&2; exit 1; }
    # The gate's first base was a particular models/default; a commit made
    # since then may have replaced it.
    first=$(cat "$accepted/first_base")
    if ! git diff --quiet "$first" -- models/default || [ -n "$(git status --porcelain -- models/default)" ]; then
      echo "models/default changed since the gate's first base ($first); evaluate again before committing" >&2; exit 1
    fi
    # Each acceptance beat the one before; the commit must also beat what
    # it replaces, directly.
    ps_release
    if ! $ps compare "$cache/first_eval" "$accepted/eval" >"$accepted/against_default.txt"; then
      cat "$accepted/against_default.txt"; echo "not better than the committed models/default; nothing committed" >&2; exit 1
    fi
    rm -rf models/default && cp -r "$accepted/model" models/default
    git add -A models/default
    git commit -q -F - -- models/default <<MSG
models/default: the background trainer's accepted candidate ($(cat "$accepted/rounds") CPU rounds, better on every protocol)

Validation split, 256 px crops, seed 0, PatchScaler's images (patchscaler compare):
$(sed -n '/^|/p' "$accepted/against_default.txt")

Rounds: $(cat "$accepted/stages")
MSG
    git rev-parse HEAD >"$accepted/committed"
    echo "committed $(git rev-parse --short HEAD)"
    exit 0 ;;
  run) ;;
  *) echo "usage: $0 start|run|pause|resume|stop|status|commit [MODEL] [PRESET]" >&2; exit 2 ;;
esac

cargo build --release --quiet
# A private copy: a rebuild while this runs for hours must not swap the
# binary under it. It finds libtorch through its rpath ($ORIGIN/../lib),
# as in the build folder and the release bundle.
mkdir -p "$cache/bin"
ln -sfn "$(readlink -f target/release/lib)" "$cache/lib"
ps=$cache/bin/patchscaler.$$
cp target/release/patchscaler "$ps"
trap 'rm -f "$ps"' EXIT
data=data/manifest.csv
[ -f "$data" ] || "$here/fetch_data.sh"
[ -d "$model" ] || $ps init --preset "$preset" -o "$model"
mkdir -p "$runs"
kind=$(grep -m1 '^kind' "$model/model.toml" | cut -d'"' -f2 || true)
mapfile -t val < <(awk -F, '$NF=="val" {print "data/"$1}' "$data")

train() { # part, seconds, flags...
  local part=$1 secs=$2; shift 2
  echo "== $(date -u +%FT%TZ) $part for at most ${secs} s"
  nice -n 19 $ps train "$part" --model "$model" --data $data --out "$runs/$part" \
    --time-limit "$secs" --config "${TRAIN_CONFIGS:-scripts/train}/$part.toml" --quiet "$@"
}
stage() {
  case $1 in
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
    *) echo "unknown stage $1" >&2; exit 2 ;;
  esac
}
# The validation split on the three protocols, as the README's figures
# (scripts/eval_default.sh) but without the uniform baseline.
evaluate() { # model, out
  local p
  for p in bicubic light realesrgan; do
    nice -n 19 $ps eval "${val[@]}" --model "$1" --crop-hr 256 --seed 0 --degrade $p --no-uniform -o "$2/$p" >"$2/$p.txt"
  done
}

# The base of the gate: the last accepted candidate, else the committed
# default (evaluated once per commit of it, kept as the commit's base).
head=$(git log -1 --format=%H -- models/default)
if [ "$(cat "$cache/first_base" 2>/dev/null)" != "$head" ]; then
  echo "== $(date -u +%FT%TZ) evaluating models/default (${head:0:7}), the gate's first base"
  rm -rf "$cache/first_eval" "$accepted" && mkdir -p "$cache/first_eval" "$accepted"
  evaluate models/default "$cache/first_eval"
  rm -rf "$cache/first_eval"/*/figures "$cache/rounds_done" "$cache/stages_done"
  echo "$head" >"$cache/first_base"
fi
if [ ! -d "$accepted/eval" ]; then
  cp -r "$cache/first_eval" "$accepted/eval"
  echo "models/default at ${head:0:7}" >"$accepted/base"
  echo "$head" >"$accepted/first_base"
  : >"$accepted/stages"
fi
rounds_file=$cache/rounds_done
round=0
while [ -z "${ROUNDS:-}" ] || [ "$round" -lt "$ROUNDS" ]; do
  round=$((round + 1))
  if [ -n "${STAGES:-}" ]; then
    stages=$STAGES
  else
    stages="$($ps compare --plan "$accepted/eval" | cut -d' ' -f1 | tr '\n' ' ')calibrate"
  fi
  echo "== $(date -u +%FT%TZ) round $round: $stages"
  for s in $stages; do stage "$s"; done
  echo $(( $(cat "$rounds_file" 2>/dev/null || echo 0) + 1 )) >"$rounds_file"
  echo "$(date -u +%FT%TZ): $stages" >>"$cache/stages_done"

  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  cand=$cache/candidates/$stamp
  mkdir -p "$cand"
  $ps convert --model "$model" -o "$cand/model" --half >/dev/null
  echo "== $(date -u +%FT%TZ) evaluating the candidate $cand"
  evaluate "$cand/model" "$cand"
  if $ps compare "$accepted/eval" "$cand" >"$cand/verdict.txt"; then
    echo "== accepted: better than $(cat "$accepted/base") on every protocol"
    rm -rf "$accepted/model" "$accepted/eval" "$accepted/committed"
    cp -r "$cand/model" "$accepted/model"
    cp -r "$cand" "$accepted/eval"
    sed -n '/^|/p' "$cand/verdict.txt" >"$accepted/table.md"
    echo "candidate $stamp" >"$accepted/base"
    cp "$rounds_file" "$accepted/rounds"
    cp "$cache/stages_done" "$accepted/stages"
  else
    echo "== not better than $(cat "$accepted/base"); training goes on from these weights"
  fi
  cat "$cand/verdict.txt"
  rm -rf "$cand/model" "$cand"/*/figures
done
echo "== $(date -u +%FT%TZ) done"
