#!/usr/bin/env python3
"""A prototype of one more suggestion order for the labelling loop, outside the tool: the most
typical window of each feature cluster no label covers yet (TypiClust, Hacohen, Dekel and
Weinshall, "Active learning on a budget", ICML 2022). It plays the person as
examples/label_oracle.rs does, for scripts/labelling_loop.sh (`SUGGESTED=typical-prototype`):

    python scripts/typical_windows.py SCAN_FOLDER MODEL_RUN MASK_FOLDER BUDGET [--seed N] [--rare N]

Needs torch, torchvision, safetensors, numpy and pillow (a virtual environment outside the
repository; `PYTHON=/path/to/venv/bin/python` for the loop).

What it does:
  1. each window of the scan (scan.json) is cut from its photo and described by MODEL_RUN's
     relu_conv10 average, the 1000 numbers the head reads, scaled to length 1;
  2. the windows are cut into as many clusters (k-means, k-means++ start, seeded) as there are
     windows in labels.csv (skips included) plus the labels still to give;
  3. of the clusters holding no window looked at yet, largest first, it takes the most typical
     window (the inverse of its mean distance to its 20 nearest neighbours in the cluster) and
     answers it from the true mask by `crackscope patches`' rule: crack when crack pixels cover
     0.005 of the window's middle half, no crack when it holds none, skip otherwise;
  4. when those clusters run out before BUDGET labels, it clusters again (step 2) and goes on;
  5. labels.csv is written as the scan view writes it (photo, x, y, size, label).
With --rare N the pool is label_oracle's where cracks are rare: of the windows holding any crack
pixel, only those whose sha256("stem:x:y") starts with a 32-bit number divisible by N are there
at all (clustered, shown, labelled).
"""
import argparse
import csv
import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.torch import load_file

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
NEIGHBOURS = 20
MIN_CRACK_SHARE = 0.005


def window_features(record, model):
    """Each window's key (photo, x, y, size) and the model's relu_conv10 average over it,
    scaled to length 1 (one row a window)."""
    net = torchvision.models.squeezenet1_1()
    tensors = load_file(str(Path(model) / 'model.safetensors'))
    tensors = {k: v for k, v in tensors.items() if not k.startswith(('head.', 'familiarity.'))}
    net.load_state_dict(tensors)
    net.eval()
    keys, feats = [], []
    for photo in record['photos']:
        rgb = np.asarray(Image.open(photo['photo']).convert('RGB'))
        crops = []
        for w in photo['windows']:
            x, y, s = w['x'], w['y'], w['size']
            a = (rgb[y:y + s, x:x + s].astype(np.float32) / 255.0 - MEAN) / STD
            crops.append(torch.from_numpy(a.transpose(2, 0, 1).copy()))
            keys.append((photo['photo'], x, y, s))
        with torch.no_grad():
            f = net.classifier[2](net.classifier[1](net.features(torch.stack(crops))))
        feats.append(f.mean((2, 3)).numpy().astype(np.float64))
    x = np.concatenate(feats)
    return keys, x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


@functools.lru_cache(maxsize=None)
def mask_of(photo, masks):
    """A photo's true mask, decoded once however many of its windows ask."""
    return np.asarray(Image.open(Path(masks) / (Path(photo).stem + '.png')).convert('L'))


def offered_when_rare(key, masks, keep):
    """label_oracle's --rare: windows without a crack pixel always, the others one in `keep`."""
    photo, x, y, s = key
    digest = hashlib.sha256(f'{Path(photo).stem}:{x}:{y}'.encode()).digest()
    return not (mask_of(photo, masks)[y:y + s, x:x + s] > 0).any() or \
        int.from_bytes(digest[:4], 'big') % keep == 0


def answer(key, masks):
    """The label a person gives by `patches`' central-region rule."""
    photo, x, y, s = key
    m = mask_of(photo, masks)[y:y + s, x:x + s] > 0
    q = s // 4
    middle = m[q:s - q, q:s - q]
    if not m.any():
        return 'no-crack'
    return 'crack' if middle.sum() >= MIN_CRACK_SHARE * middle.size else 'skip'


def kmeans(x, distances, k, rng, rounds=50):
    n = len(x)
    first = int(rng.integers(n))
    centres, nearest = [first], distances[first].copy()
    for _ in range(1, k):
        total = nearest.sum()
        i = int(rng.choice(n, p=nearest / total)) if total > 0 else int(rng.integers(n))
        centres.append(i)
        nearest = np.minimum(nearest, distances[i])
    c = x[centres].copy()
    for _ in range(rounds):
        assign = np.argmin(((x[:, None] - c[None]) ** 2).sum(-1), 1)
        moved = np.array([x[assign == j].mean(0) if (assign == j).any() else c[j] for j in range(k)])
        if np.allclose(moved, c):
            break
        c = moved
    return assign


def most_typical(members, distances):
    if len(members) == 1:
        return members[0]
    within = np.sqrt(distances[np.ix_(members, members)])
    near = np.sort(within, 1)[:, 1:min(NEIGHBOURS, len(members) - 1) + 1]
    return members[int(np.argmax(1.0 / (near.mean(1) + 1e-12)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('scan')
    ap.add_argument('model')
    ap.add_argument('masks')
    ap.add_argument('budget', type=int)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--rare', type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get('THREADS', '2')))
    scan = Path(args.scan)
    keys, x = window_features(json.load(open(scan / 'scan.json')), args.model)
    if args.rare > 1:
        offered = [i for i, k in enumerate(keys) if offered_when_rare(k, args.masks, args.rare)]
        keys, x = [keys[i] for i in offered], x[offered]
    distances = ((x[:, None] - x[None]) ** 2).sum(-1)
    index = {k: i for i, k in enumerate(keys)}
    labels_file = scan / 'labels.csv'
    rows = list(csv.DictReader(open(labels_file))) if labels_file.exists() else []
    unknown = [r for r in rows if (r['photo'], int(r['x']), int(r['y']), int(r['size'])) not in index]
    if unknown:
        raise SystemExit(f"{labels_file}: {len(unknown)} labelled windows are not in the scan's "
                         f"pool (first: {dict(unknown[0])})")
    looked = {index[(r['photo'], int(r['x']), int(r['y']), int(r['size']))] for r in rows}
    labelled = sum(r['label'] != 'skip' for r in rows)
    rng = np.random.default_rng(args.seed)
    new = 0
    while labelled < args.budget and len(looked) < len(keys):
        k = min(len(looked) + args.budget - labelled, len(keys))
        assign = kmeans(x, distances, k, rng)
        clusters = [np.flatnonzero(assign == j) for j in range(k)]
        open_clusters = [c for c in clusters if len(c) and not looked.intersection(c.tolist())]
        if not open_clusters:
            break
        for members in sorted(open_clusters, key=len, reverse=True):
            if labelled >= args.budget:
                break
            i = int(most_typical(members, distances))
            label = answer(keys[i], args.masks)
            looked.add(i)
            new += 1
            photo, wx, wy, size = keys[i]
            rows.append(dict(photo=photo, x=wx, y=wy, size=size, label=label))
            labelled += label != 'skip'
    tmp = labels_file.with_suffix('.csv.tmp')
    with open(tmp, 'w', newline='') as fh:
        out = csv.DictWriter(fh, ['photo', 'x', 'y', 'size', 'label'])
        out.writeheader()
        out.writerows(rows)
    os.replace(tmp, labels_file)
    cracks = sum(r['label'] == 'crack' for r in rows)
    clear = sum(r['label'] == 'no-crack' for r in rows)
    print(f'{labels_file}: looked at {new} more windows; {cracks + clear} labels '
          f'({cracks} crack, {clear} no crack), {len(rows) - cracks - clear} skipped')


if __name__ == '__main__':
    main()
