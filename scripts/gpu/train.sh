#!/usr/bin/env bash
# Trains every part of a model in order on a lent GPU machine, within one
# command's time, continuing from the committed model; or, with the
# overrides below, dry-runs the same procedure on the CPU (tests/gpu_procedure.rs).
#
# On the device (from the repository root, `gpu-pack` carried; see
# scripts/gpu/README.md):   bash scripts/gpu/train.sh
#
# Order: ae -> grm -> texture -> rtm -> dit -> calibrate. Each part trains
# for at most its planned seconds and never past the budget; after every
# finished stage the model as it stands goes to $OUT (fp16, xz, split into
# parts under the 16 MiB return limit) with STAGES naming the stages done,
# so a run cut off still returns usable weights. Retraining the AE moves the
# latent space: only a model whose STAGES lists every stage after `ae` is
# consistent (scripts/gpu/unpack.sh refuses anything else unless told).
# The chain stops at the first failed stage. Then: `devices`, CUDA-vs-CPU
# upscale of the sample, and `bench` (f32, bf16) of the new model.
#
# Overrides (environment): OUT, GPU_DEVICE (cuda), GPU_BUDGET (seconds, 540),
# GPU_PACK (gpu-pack), GPU_MODEL_FROM (models/default), PS_BIN (else the
# packed binary), GPU_SCALE (1: sizes below; "tiny": small batches and crops
# for a CPU dry run), T_AE T_GRM T_TEXTURE T_DIT (planned seconds),
# GPU_RESERVE (seconds kept for what follows a stage, 45), GPU_BENCH_SIZE (512),
# GPU_SAMPLE (the image upscaled on the device and on the CPU; assets/sample.png),
# GPU_PUBLISH (0: return no model; for a smoke run), GPU_CHECKS (full; quick:
# no CPU comparison, no bench), GPU_BENCH_BATCHES (further --max-batch values
# to bench, default 512), GPU_CEILING (0: skip scripts/gpu/ceiling.py, the
# plain-PyTorch step times of the same shapes).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/gpu-out}
mkdir -p "$OUT"
DEVICE=${GPU_DEVICE:-cuda}
BUDGET=${GPU_BUDGET:-540}
PACK=${GPU_PACK:-gpu-pack}
MODEL_FROM=${GPU_MODEL_FROM:-models/default}
start=$(date +%s)
log() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$OUT/log.txt"; }
left() { echo $((BUDGET - ($(date +%s) - start))); }

if [ -z "${PS_BIN:-}" ]; then
  TL=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib
  export LD_LIBRARY_PATH=$TL${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$PACK/patchscaler.xz'), open('/tmp/patchscaler','wb'))"
  chmod +x /tmp/patchscaler
  PS_BIN=/tmp/patchscaler
fi
ps=$PS_BIN
data=$PACK/data/manifest.csv
scratch=$(mktemp -d)
# Everything worth keeping goes to $OUT; the scratch (the model, the runs,
# the bundle: about 0.5 GB) must not pile up in /tmp run after run.
trap 'rm -rf "$scratch"' EXIT
work=$scratch/model
runs=$scratch/runs
mkdir -p "$runs"
cp -r "$MODEL_FROM" "$work"
$ps devices 2>&1 | tee -a "$OUT/log.txt"

if [ "${GPU_SCALE:-1}" = tiny ]; then
  ae=(--batch 2 --crop 64) grm=(--batch 2 --crop 96 --reuse 2) tex=(--batch 2 --reuse 2) dit=(--batch 2 --crop 96 --patches-per-crop 2 --reuse 2)
  rtm=(--candidates 64) val=(--val-batches 1)
else
  ae=(--batch 16 --crop 256) grm=(--batch 16 --crop 256 --reuse 4) tex=(--batch 32 --reuse 8) dit=(--batch 16 --crop 256 --patches-per-crop 16 --reuse 4)
  rtm=(--candidates 20000) val=(--val-batches 4)
fi
common=(--data "$data" --device "$DEVICE" --precision bf16 --steps 10000000 --quiet "${val[@]}")

done_stages=""
# The model as it stands, fp16, to $OUT; logs and plots beside it.
publish() {
  [ "${GPU_PUBLISH:-1}" = 1 ] || return 0
  rm -rf "$scratch/half" "$OUT"/model.tar.xz.*
  $ps convert --model "$work" -o "$scratch/half" --half >/dev/null || return 1
  echo "$done_stages" >"$scratch/half/STAGES"
  tar -C "$scratch" -cf - half | xz -3 -T0 | split -b 15M - "$OUT/model.tar.xz."
  tar -C "$runs" -cJf "$OUT/runs.tar.xz" --exclude='ckpt*' --exclude='*.safetensors' .
}
# stage NAME PLANNED_S CMD...: runs CMD with --time-limit (the plan, or what
# the budget leaves); PLANNED_S 0 means the command takes no time limit.
stage() {
  local name=$1 want=$2 t reserve=${GPU_RESERVE:-45}
  shift 2
  t=$(($(left) - reserve))
  if [ "$t" -lt 5 ]; then
    log "$name: skipped, $(left) s of the budget left"
    return 1
  fi
  [ "$want" -gt 0 ] && [ "$want" -lt "$t" ] && t=$want
  local extra=()
  [ "$want" -gt 0 ] && extra=(--time-limit "$t")
  log "$name: start (${want:+limit $t s})"
  if "$@" "${extra[@]}" >>"$OUT/log.txt" 2>&1; then
    done_stages="$done_stages $name"
    publish && log "$name: done, published (stages:$done_stages)"
  else
    log "$name: FAILED (see above)"
    return 1
  fi
}

# The exact latent has nothing to train (its statistics were measured when
# the model was made, and `train ae` keeps them): the AE's minutes go to the
# GRM and the Patch-DiT.
if grep -q '^kind = "space_to_depth"' "$work/model.toml"; then
  : "${T_AE:=20}" "${T_GRM:=190}" "${T_DIT:=190}"
fi
stage ae "${T_AE:-250}" $ps train ae --model "$work" --out "$runs/ae" "${common[@]}" "${ae[@]}" --lr 2e-4 --config scripts/gpu/ae.toml &&
  stage grm "${T_GRM:-60}" $ps train grm --model "$work" --out "$runs/grm" "${common[@]}" "${grm[@]}" --lr 2e-4 --config scripts/gpu/grm.toml &&
  stage texture "${T_TEXTURE:-10}" $ps train texture --model "$work" --out "$runs/texture" "${common[@]}" "${tex[@]}" --lr 5e-4 --config scripts/gpu/texture.toml &&
  stage rtm 0 $ps train rtm --model "$work" --data "$data" --device "$DEVICE" "${rtm[@]}" &&
  stage dit "${T_DIT:-100}" $ps train dit --model "$work" --out "$runs/dit" "${common[@]}" "${dit[@]}" --lr 2e-4 --config scripts/gpu/dit.toml &&
  stage calibrate 0 $ps calibrate --model "$work" --data "$data" --shares 0.5,0.25 --device "$DEVICE"

# Checks of the GPU path on the result (or on the committed model).
model=$work
case "$done_stages" in *calibrate*) ;; *) model=$MODEL_FROM ;; esac
sample=${GPU_SAMPLE:-assets/sample.png}
log "checks on $model"
$ps upscale --model "$model" "$sample" -o "$scratch/sample_dev.png" --device "$DEVICE" 2>&1 | tee -a "$OUT/log.txt"
[ "${GPU_CHECKS:-full}" = full ] && $ps upscale --model "$model" "$sample" -o "$scratch/sample_cpu.png" --device cpu 2>&1 | tail -1 | tee -a "$OUT/log.txt"
cat >"$scratch/pixdiff.py" <<'PY'
import sys, zlib, struct
def pixels(p):  # 8-bit RGB PNG, no filters library needed
    d = open(p, 'rb').read(); i = 8; w = h = 0; idat = b''
    while i < len(d):
        n, t = struct.unpack('>I4s', d[i:i+8]); c = d[i+8:i+8+n]; i += 12 + n
        if t == b'IHDR': w, h, bd, ct = struct.unpack('>IIBB', c[:10])
        if t == b'IDAT': idat += c
    raw = zlib.decompress(idat); bpp = 3; stride = w * bpp; out = []; prev = bytearray(stride); k = 0
    for _ in range(h):
        f = raw[k]; line = bytearray(raw[k+1:k+1+stride]); k += 1 + stride
        for x in range(stride):
            a = line[x-bpp] if x >= bpp else 0; b = prev[x]; c = prev[x-bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line; prev = line
    return out
a, b = pixels(sys.argv[1]), pixels(sys.argv[2])
diff = [abs(x - y) for x, y in zip(a, b)]
print(f"{sys.argv[3]}: max |diff| {max(diff)} levels, mean {sum(diff)/len(diff):.4f}")
PY
pixdiff() { python3 "$scratch/pixdiff.py" "$@" 2>&1 | tee -a "$OUT/log.txt"; }
[ -f "$scratch/sample_cpu.png" ] && pixdiff "$scratch/sample_dev.png" "$scratch/sample_cpu.png" "upscale on $DEVICE vs CPU"
# The release bundle on this machine (issue 22): laid out by
# scripts/bundle_dir.sh from the packed binary and this machine's torch, run
# with an empty environment; CUDA taken (a) through PATCHSCALER_CUDA_LIB
# pointing at this machine's torch/lib, (b) copied into the bundle's lib/ as
# the README says ("The release bundle"). Each is set against the
# repository run's output above.
if [ "${GPU_CHECKS:-full}" = full ] && [ "$(left)" -gt 60 ]; then
  tl=$($ps devices 2>/dev/null | sed -n 's/^libtorch: //p')
  bundle=$scratch/bundle
  log "bundle: laid out from $tl"
  if scripts/bundle_dir.sh "$bundle" "$ps" "$tl" "$model" 2>&1 | tee -a "$OUT/log.txt"; then
    bundled() { (cd "$bundle" && env -i PATH=/usr/bin:/bin "$@" ./bin/patchscaler upscale sample.png -o "$scratch/bundle.png" --device "$DEVICE" 2>&1 | tail -2 | tee -a "$OUT/log.txt"); }
    env -i PATH=/usr/bin:/bin PATCHSCALER_CUDA_LIB="$tl" "$bundle/bin/patchscaler" devices 2>&1 | tee -a "$OUT/log.txt"
    cp "$sample" "$bundle/sample.png"
    bundled PATCHSCALER_CUDA_LIB="$tl" && pixdiff "$scratch/sample_dev.png" "$scratch/bundle.png" "bundle (a), PATCHSCALER_CUDA_LIB, vs the repository run"
    site=$(cd "$tl/../.." && pwd)
    if compgen -G "$site/nvidia/*/lib/libcublas.so*" >/dev/null && [ -f "$tl/libtorch_cuda.so" ]; then
      for f in torch_cuda c10_cuda torch_cuda_linalg torch_nvshmem; do
        [ -f "$tl/lib$f.so" ] && cp "$tl/lib$f.so" "$bundle/lib/"
      done
      cp -P "$site"/nvidia/*/lib/*.so* "$bundle/lib/"
      log "bundle (b): copied $(du -sm "$bundle/lib" | cut -f1) MB into lib/"
      env -i PATH=/usr/bin:/bin "$bundle/bin/patchscaler" devices 2>&1 | tee -a "$OUT/log.txt"
      rm -f "$scratch/bundle.png"
      bundled && pixdiff "$scratch/sample_dev.png" "$scratch/bundle.png" "bundle (b), CUDA in lib/, vs the repository run"
    fi
  fi
fi
if [ "${GPU_CHECKS:-full}" = full ] && [ "$(left)" -gt 20 ]; then
  $ps bench --model "$model" --device "$DEVICE" --data "$PACK/data" --size "${GPU_BENCH_SIZE:-512}" -o "$OUT/bench" 2>&1 | tee -a "$OUT/log.txt"
  # Larger batches (the lock-step sampler keeps every group in them): the
  # figures go to the log only, the returned files being few.
  for b in ${GPU_BENCH_BATCHES:-512}; do
    [ "$(left)" -gt 30 ] || break
    log "bench --max-batch $b"
    $ps bench --model "$model" --device "$DEVICE" --data "$PACK/data" --size "${GPU_BENCH_SIZE:-512}" --max-batch "$b" -o "$scratch/bench_$b" 2>&1 | tee -a "$OUT/log.txt"
  done
fi
# The plain-PyTorch ceiling of the AE and Patch-DiT steps on this machine,
# to set the trainers' ms / step (runs.tar.xz, log.csv) against.
if [ "${GPU_CEILING:-1}" = 1 ] && [ "$(left)" -gt 20 ]; then
  tiny=()
  [ "${GPU_SCALE:-1}" = tiny ] && tiny=(--tiny --steps 1)
  if python3 -c 'import torch' 2>/dev/null; then
    python3 scripts/gpu/ceiling.py --device "$DEVICE" "${tiny[@]}" 2>&1 | tee -a "$OUT/log.txt"
  else
    # The light set-up's venv (scripts/setup.sh) cannot import torch; a lent
    # GPU's always can.
    python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' scripts/gpu/ceiling.py && log "ceiling: skipped, python3 cannot import torch here (parsed only)"
  fi
fi
if [ -f "$PACK/lib-tests.xz" ] && [ "$(left)" -gt 10 ]; then
  python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$PACK/lib-tests.xz'), open('$scratch/lib-tests','wb'))"
  chmod +x "$scratch/lib-tests"
  PATCHSCALER_ALLOW_MISSING_CONFORMANCE=1 timeout "$(($(left) > 5 ? $(left) : 5))" "$scratch/lib-tests" --ignored cuda 2>&1 | tail -15 | tee -a "$OUT/log.txt"
fi
log "end; stages:$done_stages"
