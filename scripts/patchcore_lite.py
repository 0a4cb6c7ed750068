#!/usr/bin/env python3
"""PatchCore-lite in PyTorch: the reference that crackscope's one-class mode is measured against.

    /work/venvs/torch/bin/python scripts/patchcore_lite.py SPLIT_JSON [--bank 20000] [--seed 0]
        [--threads 2] [--json OUT] [--bank-indices JSON] [--scores CSV] [--only CSV]

SPLIT_JSON is a crackscope split manifest (a run's split.json, or the one
scripts/oneclass_ablation.sh writes): `root`, `classes`, and `train` / `val` / `test` entries of
`{path, label}`. What it does, as the issue that asked for it describes the method:

  1. torchvision's squeezenet1_1 with the weights given by --weights (default: the shared
     pretrained/squeezenet1_1.pth under $CRACKSCOPE_TEST_DATA or ../shared/data), eval mode, features through fire5 (`features[:8]`);
  2. every image as PIL decodes it (`Image.open(p).convert('RGB')`), resized to 227x227 if it is
     not (bilinear), scaled to [0, 1] and normalised with the ImageNet mean and std;
  3. patch features: fire5's 256 channels, each averaged over 3x3 neighbourhoods
     (`avg_pool2d(3, stride 1, padding 1)`, PatchCore's own choice: zero padding counted), on
     fire5's 28x28 grid;
  4. the bank: --bank patches drawn uniformly at random (torch.Generator seeded with --seed) from
     all patches of the normal class's training images, or the patches --bank-indices lists (a
     JSON list of image * 784 + patch, as `examples/oneclass_ablation.rs --scores` writes the
     random bank it drew: the same bank in both, so that their scores compare image by image);
  5. an image's score: the largest distance of any of its patches to its nearest bank entry
     (exact, torch.cdist in float32).

It prints, for the validation split (`val`, where crackscope's ablation makes its choices) and
the test split (`test`, held out), AUROC and average precision (both computed as crackscope
computes them: Mann-Whitney with mid-ranks, and scikit-learn's step-wise AP), the fit's seconds,
scoring images/s and the bank's memory. --json writes the same as one JSON object; --scores
writes every image's score (split, path, anomalous, score); --only scores just the validation and
test images that such a CSV lists (the balanced subset `oneclass_ablation.rs --max-eval` scored).
"""
import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
SIZE = 227
BATCH = 32


def load_images(paths):
    out = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        if img.size != (SIZE, SIZE):
            img = img.resize((SIZE, SIZE), Image.BILINEAR)
        out.append(torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()))
    x = torch.stack(out).permute(0, 3, 1, 2).float() / 255.0
    return (x - MEAN) / STD


def patches(backbone, x):
    """[B, 784, 256] patch features of a batch."""
    with torch.no_grad():
        f = backbone(x)
        f = F.avg_pool2d(f, 3, stride=1, padding=1)
    return f.flatten(2).transpose(1, 2).contiguous()


def batches(paths):
    for i in range(0, len(paths), BATCH):
        yield load_images(paths[i : i + BATCH])


def score(backbone, bank, paths):
    scores = []
    for x in batches(paths):
        p = patches(backbone, x)
        for one in p:
            d = torch.cdist(one, bank).min(dim=1).values
            scores.append(float(d.max()))
    return np.array(scores, dtype=np.float64)


def auroc(scores, positive):
    """Mann-Whitney U with mid-ranks for ties (crackscope's stats::auroc)."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2 + 1
        i = j + 1
    pos = positive[order]
    p, n = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - p * (p + 1) / 2) / (p * n))


def average_precision(scores, positive):
    """Step-wise AP over tied groups, highest scores first (crackscope's ranking::average_precision)."""
    order = np.argsort(-scores, kind="stable")
    s, pos = scores[order], positive[order]
    total = pos.sum()
    hits = seen = 0
    ap = 0.0
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        new = int(pos[i : j + 1].sum())
        hits += new
        seen += j - i + 1
        ap += new / total * hits / seen
        i = j + 1
    return float(ap)


def main():
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("split")
    data = Path(os.environ.get("CRACKSCOPE_TEST_DATA", here.parent.parent / "shared/data"))
    ap.add_argument("--weights", default=str(data / "pretrained/squeezenet1_1.pth"))
    ap.add_argument("--bank", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--normal", default="Negative")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--bank-indices")
    ap.add_argument("--scores")
    ap.add_argument("--only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    manifest = json.loads(Path(args.split).read_text())
    root = Path(manifest["root"])
    normal = manifest["classes"].index(args.normal)

    only = None
    if args.only:
        only = {line.split(",")[1] for line in Path(args.only).read_text().splitlines()[1:]}

    def part(name):
        entries = manifest[name]
        if only is not None and name != "train":
            entries = [e for e in entries if str(root / e["path"]) in only]
        return [str(root / e["path"]) for e in entries], np.array([e["label"] != normal for e in entries])

    model = torchvision.models.squeezenet1_1()
    model.load_state_dict(torch.load(args.weights, map_location="cpu"))
    backbone = model.features[:8].eval()

    fit_paths = [p for p, a in zip(*part("train")) if not a]
    started = time.perf_counter()
    all_patches = torch.cat([patches(backbone, x).reshape(-1, 256) for x in batches(fit_paths)])
    if args.bank_indices:
        chosen = torch.tensor(json.loads(Path(args.bank_indices).read_text()), dtype=torch.long)
    else:
        g = torch.Generator().manual_seed(args.seed)
        chosen = torch.randperm(len(all_patches), generator=g)[: args.bank]
    bank = all_patches[chosen].contiguous()
    del all_patches
    fit_s = time.perf_counter() - started

    result = {
        "method": "PatchCore-lite (PyTorch)",
        "normal_images": len(fit_paths),
        "bank_entries": len(bank),
        "bank_values": bank.shape[1],
        "bank_mib": bank.numel() * 4 / 2**20,
        "fit_s": fit_s,
        "torch": torch.__version__,
        "threads": args.threads,
    }
    lines = ["split,path,anomalous,score"]
    for name, key in [("val", "choice"), ("test", "report")]:
        paths, positive = part(name)
        started = time.perf_counter()
        s = score(backbone, bank, paths)
        seconds = time.perf_counter() - started
        lines += [f"{name},{p},{int(a)},{v}" for p, a, v in zip(paths, positive, s)]
        result[key] = {
            "split": name,
            "images": len(paths),
            "anomalies": int(positive.sum()),
            "auroc": auroc(s, positive),
            "average_precision": average_precision(s, positive),
            "score_images_per_s": len(paths) / seconds,
        }
    if args.bank_indices:
        result["bank_indices"] = args.bank_indices
    if args.scores:
        Path(args.scores).write_text("\n".join(lines) + "\n")
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
