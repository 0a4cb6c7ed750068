#!/usr/bin/env python3
"""Turns the logs of scripts/gpu-check.sh into one Markdown table (crackscope beside PyTorch, ratios).

    python3 scripts/gpu_table.py OUT > OUT/table.md
"""
import glob
import json
import os
import re
import sys


def last_json(path):
    """The last line of a log that parses as a JSON object, or None."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def crackscope_training(out):
    """Training time and images/s from the run's metrics.jsonl copy, test accuracy from report.json."""
    report = {}
    try:
        with open(os.path.join(out, "report-crackscope.json")) as f:
            report = json.load(f)
    except (OSError, ValueError):
        pass
    log = os.path.join(out, "train-crackscope.log")
    text = open(log).read() if os.path.exists(log) else ""
    seconds = re.findall(r"in ([0-9.]+)\s*s", text)
    return {
        "train_s": float(seconds[-1]) if seconds else None,
        "test_accuracy": report.get("accuracy"),
    }


def fmt(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio(a, b):
    return "n/a" if not a or not b else f"{a / b:.2f}"


def main():
    out = sys.argv[1]
    steps = {}
    if os.path.exists(os.path.join(out, "steps.txt")):
        for line in open(os.path.join(out, "steps.txt")):
            m = re.match(r"(\S+): exit (\d+) in (\d+) s", line)
            if m:
                steps[m.group(1)] = (int(m.group(2)), int(m.group(3)))

    rows = []
    for path in sorted(glob.glob(os.path.join(out, "bench-crackscope-*.log"))):
        batch = path.rsplit("-", 1)[1].split(".")[0]
        ours = last_json(path) or {}
        theirs = last_json(os.path.join(out, f"bench-torch-{batch}.log")) or {}
        for key, label in [("train_images_per_s", "training, images/s"),
                           ("infer_images_per_s", "inference, images/s")]:
            a, b = ours.get(key), theirs.get(key)
            rows.append((f"{label}, batch {batch}", fmt(a), fmt(b), ratio(a, b)))
        a, b = ours.get("gradcam_ms"), theirs.get("gradcam_ms")
        rows.append((f"Grad-CAM ms per image (batch {batch} run)", fmt(a, 2), fmt(b, 2), ratio(a, b)))

    stock = glob.glob(os.path.join(out, "bench-stock-*.log"))
    if stock:
        batch = stock[0].rsplit("-", 1)[1].split(".")[0]
        ours = last_json(os.path.join(out, f"bench-crackscope-{batch}.log")) or {}
        theirs = last_json(stock[0]) or {}
        a, b = ours.get("train_images_per_s"), theirs.get("train_images_per_s")
        rows.append((f"training images/s, batch {batch}: matrix products vs stock candle convolutions",
                     fmt(a), fmt(b), ratio(a, b)))

    torch_train = last_json(os.path.join(out, "train-torch.log")) or {}
    ours = crackscope_training(out)
    wall_ours = steps.get("train-crackscope", (None, None))[1]
    wall_theirs = steps.get("train-torch", (None, None))[1]
    rows.append(("seed recipe: training time, s", fmt(ours["train_s"]), fmt(torch_train.get("train_s")),
                 ratio(ours["train_s"], torch_train.get("train_s"))))
    rows.append(("seed recipe: whole command, s", fmt(wall_ours, 0), fmt(wall_theirs, 0),
                 ratio(wall_ours, wall_theirs)))
    rows.append(("seed recipe: test accuracy", fmt(ours["test_accuracy"], 4),
                 fmt(torch_train.get("test_accuracy"), 4), ""))

    gpu = open(os.path.join(out, "gpu.txt")).read() if os.path.exists(os.path.join(out, "gpu.txt")) else ""
    name = re.search(r"NVIDIA (H100|H200)[^|]*", gpu)
    print(f"# crackscope vs PyTorch on {name.group(0).strip() if name else 'the device'}\n")
    print("For images/s a ratio above 1 means crackscope is faster; for times, below 1.\n")
    print("| | crackscope | PyTorch | ratio |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\n| step | exit | seconds |\n| --- | --- | --- |")
    for step, (code, seconds) in steps.items():
        print(f"| {step} | {code} | {seconds} |")


if __name__ == "__main__":
    main()
