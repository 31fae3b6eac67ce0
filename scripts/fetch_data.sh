#!/usr/bin/env bash
# Fetches the HR training / validation photos into data/ (gitignored).
#
# Sources are openly licensed Debian packages (wallpapers, Wesnoth story art,
# OpenCV's sample images) and the images shipped inside the scikit-image
# wheel. Packages are fetched with `apt-get download` and unpacked with
# `dpkg -x`: nothing is installed on the system. Only photos / art whose short
# side is >= 256 px are kept; resolution variants of one picture are merged
# (the largest survives) so a picture never lands in both splits.
#
# Output: data/images/<source>/<name>.<png|jpg> (copies, never re-encoded) and
# data/manifest.csv: file,source_package,licence,width,height,split.
# The split is fixed by a hash of "<source>/<name>" (~10 % val); every
# scikit-image photo (astronaut, coffee, chelsea, ...) is val so that the
# metrics' reference photos stay unseen in training. Idempotent: downloads
# and unpacked trees are reused, images/ and the manifest are rebuilt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA="$ROOT/data"
DEBS="$DATA/debs"
RAW="$DATA/raw"
IMAGES="$DATA/images"
MANIFEST="$DATA/manifest.csv"
MIN_SIDE=256
PACKAGES=(mate-backgrounds plasma-workspace-wallpapers ukui-wallpapers wesnoth-1.16-data opencv-doc)
# Synthetic charts, calibration boards, text and masks: not photos or art.
SKIMAGE_SKIP='^(chessboard|checkerboard|logo|phantom|color|horse|page|text|microaneurysms|lbpcascade|brain|cells3d|kidney|lily|eagle|motorcycle_disp|multipage|no_time|.*_GRAY|.*mask.*)$'
OPENCV_SKIP='^(aloeGT|blox|cards|chessboard|detect_blob|digits|ela_modified|ellipses|gradient|graf[0-9]|imageText.*|left[0-9]*|right[0-9]*|licenseplate_motion|ml|opencv-logo|pic[0-9]|sudoku|text_.*)$'

mkdir -p "$DEBS" "$RAW"

fetch_deb() { # $1 package -> unpacked into $RAW/$1
  local pkg=$1
  [ -f "$RAW/$pkg/.done" ] && return 0
  if ! ls "$DEBS/${pkg}"_*.deb >/dev/null 2>&1; then
    (cd "$DEBS" && apt-get download "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed') ||
      { apt-get update >/dev/null && (cd "$DEBS" && apt-get download "$pkg"); }
  fi
  rm -rf "$RAW/$pkg" && mkdir -p "$RAW/$pkg"
  dpkg -x "$(ls "$DEBS/${pkg}"_*.deb | head -1)" "$RAW/$pkg"
  touch "$RAW/$pkg/.done"
}

fetch_skimage() { # image files of the scikit-image wheel -> $RAW/scikit-image
  [ -f "$RAW/scikit-image/.done" ] && return 0
  local tmp
  tmp=$(mktemp -d)
  python3 -m pip download --no-deps --only-binary=:all: --dest "$tmp" "scikit-image==0.26.0" >/dev/null
  rm -rf "$RAW/scikit-image" && mkdir -p "$RAW/scikit-image"
  python3 -m zipfile -e "$tmp"/scikit_image-*.whl "$tmp/whl"
  cp "$tmp"/whl/skimage/data/*.png "$tmp"/whl/skimage/data/*.jpg "$RAW/scikit-image/" 2>/dev/null || true
  cp "$tmp"/whl/scikit_image-*.dist-info/METADATA "$RAW/scikit-image/METADATA"
  rm -rf "$tmp"
  touch "$RAW/scikit-image/.done"
}

# "W H" of a PNG / JPEG from `file`, empty when unknown.
dims() {
  local info
  info=$(file -b -P name=1000 "$1")
  case "$info" in
    PNG*) grep -oE '^PNG image data, [0-9]+ x [0-9]+' <<<"$info" | grep -oE '[0-9]+' | tr '\n' ' ' ;;
    JPEG*) grep -oE 'precision [0-9]+, [0-9]+x[0-9]+' <<<"$info" | sed 's/.*, //; s/x/ /' ;;
  esac
}

# Licence from a Debian copyright file: the first DEP-5 `License:` value,
# else the GPL version a free-text file names.
deb_licence() {
  local f="$RAW/$1/usr/share/doc/$1/copyright" l
  l=$(grep -m1 -E '^License: *[^ ]' "$f" 2>/dev/null | sed 's/^License: *//') ||
    l=$(grep -m1 -oE 'GNU (Lesser |Library )?General Public License,? version [0-9]' "$f" |
      sed -E 's/.*Lesser.*version /LGPL-/; s/.*Library.*version /LGPL-/; s/.*General Public License,? version /GPL-/') || true
  echo "${l:-see $1 copyright}"
}

# Licence of the wheel: License-Expression, else its licence classifier.
wheel_licence() {
  local l
  l=$(grep -m1 -E '^License-Expression:' "$1" | sed 's/^[^:]*: *//') ||
    l=$(grep -m1 -E '^Classifier: License ::' "$1" | sed 's/.*:: //') || true
  echo "${l:-see $1}"
}

# Candidate image paths of one source, one per line.
candidates() {
  case "$1" in
    mate-backgrounds) find "$RAW/$1/usr/share/backgrounds" -type f \( -iname '*.jpg' -o -iname '*.png' \) ;;
    plasma-workspace-wallpapers) find "$RAW/$1/usr/share/wallpapers" -path '*/contents/images/*' -type f \( -iname '*.jpg' -o -iname '*.png' \) ;;
    ukui-wallpapers) find "$RAW/$1/usr/share/backgrounds" -type f \( -iname '*.jpg' -o -iname '*.png' \) ;;
    wesnoth-1.16-data) find "$RAW/$1" -path '*/images/story/*' -type f \( -iname '*.jpg' -o -iname '*.png' \) ;;
    opencv-doc) find "$RAW/$1/usr/share/doc/opencv-doc/examples/data" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.png' \) ;;
    scikit-image) find "$RAW/$1" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.png' \) ;;
  esac
}

# Picture identity: plasma stores one picture per folder in several sizes;
# others mark size variants with a _WxH suffix.
picture_key() {
  local src=$1 path=$2 base
  if [ "$src" = plasma-workspace-wallpapers ]; then
    basename "$(dirname "$(dirname "$(dirname "$path")")")"
    return
  fi
  base=$(basename "${path%.*}")
  base=$(sed -E 's/[_-][0-9]+x[0-9]+$//' <<<"$base")
  tr -c 'A-Za-z0-9._\n-' '_' <<<"$base"
}

for pkg in "${PACKAGES[@]}"; do fetch_deb "$pkg"; done
fetch_skimage

rm -rf "$IMAGES" && mkdir -p "$IMAGES"
echo "file,source_package,licence,width,height,split" >"$MANIFEST"
for src in "${PACKAGES[@]}" scikit-image; do
  if [ "$src" = scikit-image ]; then
    licence=$(wheel_licence "$RAW/$src/METADATA")
  else
    licence=$(deb_licence "$src")
  fi
  declare -A best_path=() best_area=()
  while IFS= read -r path; do
    read -r w h <<<"$(dims "$path")" || true
    [ -n "${w:-}" ] && [ -n "${h:-}" ] || continue
    [ "$((w < h ? w : h))" -ge "$MIN_SIDE" ] || continue
    key=$(picture_key "$src" "$path")
    if [ "$src" = scikit-image ] && grep -qE "$SKIMAGE_SKIP" <<<"$key"; then continue; fi
    if [ "$src" = opencv-doc ] && grep -qE "$OPENCV_SKIP" <<<"$key"; then continue; fi
    if [ "$((w * h))" -gt "${best_area[$key]:-0}" ]; then
      best_area[$key]=$((w * h)); best_path[$key]="$path"
    fi
  done < <(candidates "$src" | sort)
  mkdir -p "$IMAGES/$src"
  for key in $(printf '%s\n' "${!best_path[@]}" | sort); do
    path=${best_path[$key]}
    ext=$(tr 'A-Z' 'a-z' <<<"${path##*.}"); [ "$ext" = jpeg ] && ext=jpg
    rel="images/$src/$key.$ext"
    cp "$path" "$DATA/$rel"
    read -r w h <<<"$(dims "$path")"
    hash=$(printf '%s/%s' "$src" "$key" | cksum | cut -d' ' -f1)
    split=train
    if [ "$src" = scikit-image ] || [ $((hash % 10)) -eq 0 ]; then split=val; fi
    echo "$rel,$src,\"$licence\",$w,$h,$split" >>"$MANIFEST"
  done
  unset best_path best_area
done

echo "per source (images, size):"
for src in "${PACKAGES[@]}" scikit-image; do
  printf '  %-28s %4d  %s\n' "$src" "$(grep -c ",$src," "$MANIFEST" || true)" "$(du -sh "$IMAGES/$src" | cut -f1)"
done
printf '  %-28s %4d  %s\n' total "$(($(wc -l <"$MANIFEST") - 1))" "$(du -sh "$IMAGES" | cut -f1)"
printf '  train %d, val %d\n' "$(grep -c ',train$' "$MANIFEST")" "$(grep -c ',val$' "$MANIFEST")"
