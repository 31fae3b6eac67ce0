"""Packs the training images for a lent GPU machine, within its upload limit.

Every image of data/manifest.csv (both splits, the split kept) is resized so
that its long side is at most --max-side and stored as JPEG; if the pack
exceeds --budget-mb the side shrinks by 10 % and the pack is redone. Downscaling
a wallpaper also concentrates its detail per pixel, which is what x4 training
crops want. Output: OUT/images/... and OUT/manifest.csv (same columns, new sizes).
Needs Pillow, which scripts/gpu/pack.sh installs into the project venv.
"""
import argparse, csv, io, os, sys
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("manifest")
ap.add_argument("out")
ap.add_argument("--max-side", type=int, default=768)
ap.add_argument("--quality", type=int, default=92)
ap.add_argument("--budget-mb", type=float, default=13.0)
a = ap.parse_args()

root = os.path.dirname(os.path.abspath(a.manifest))
rows = list(csv.DictReader(open(a.manifest)))
side = a.max_side
while True:
    packed, total = [], 0
    for r in rows:
        im = Image.open(os.path.join(root, r["file"]))
        im = im.convert("RGB")
        w, h = im.size
        s = min(1.0, side / max(w, h))
        if s < 1.0:
            im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
        if min(im.size) < 256:
            continue  # the trainers' crops need a short side of 256
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=a.quality, subsampling=0)
        name = os.path.splitext(r["file"])[0] + ".jpg"
        packed.append((r, name, im.size, buf.getvalue()))
        total += len(buf.getvalue())
    if total <= a.budget_mb * 1e6 or side < 320:
        break
    side = int(side * 0.9)
    print(f"pack: {total/1e6:.1f} MB over budget; max side -> {side}", file=sys.stderr)

with open(os.path.join(a.out, "manifest.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["file", "source_package", "licence", "width", "height", "split"])
    for r, name, (iw, ih), data in packed:
        path = os.path.join(a.out, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").write(data)
        w.writerow([name, r["source_package"], r["licence"], iw, ih, r["split"]])
splits = [r["split"] for r, *_ in packed]
print(f"pack: {len(packed)} images ({splits.count('train')} train, {splits.count('val')} val), "
      f"long side <= {side}, {total/1e6:.1f} MB")
