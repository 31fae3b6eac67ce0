#!/usr/bin/env bash
# Installs the model a GPU run returned (scripts/gpu/train.sh) into a model
# folder: joins $FROM/model.tar.xz.*, checks that every stage finished (a run
# cut off after `ae` but before the rest holds parts trained on different
# latent spaces), and replaces the folder's files.
# Usage: scripts/gpu/unpack.sh FROM [MODEL_DIR (models/default)] [--partial]
set -euo pipefail
from=$1
dest=${2:-models/default}
need="ae grm texture rtm dit calibrate"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat "$from"/model.tar.xz.* | xz -d | tar -x -C "$tmp"
stages=$(cat "$tmp/half/STAGES")
for s in $need; do
  case " $stages " in *" $s "*) ;; *)
    if [ "${3:-}" != --partial ]; then
      echo "unpack: stage $s did not finish (done:$stages); not installing (--partial to force)" >&2
      exit 1
    fi ;;
  esac
done
rm "$tmp/half/STAGES"
mkdir -p "$dest"
cp "$tmp"/half/* "$dest"/
echo "unpack: installed stages:$stages into $dest"
