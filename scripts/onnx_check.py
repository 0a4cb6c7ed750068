#!/usr/bin/env python3
"""Checks a model written by `crackscope export` with ONNX Runtime against crackscope itself.

    python scripts/onnx_check.py MODEL.onnx RUN_OR_CHECKPOINT IMAGE... \
        [--crackscope target/release/crackscope] [--threads 2] [--batch 32] [--bench]

Needs onnxruntime, numpy and pillow (a virtual environment outside the repository, for example
`python3 -m venv /work/venvs/onnx && /work/venvs/onnx/bin/pip install onnxruntime numpy pillow`).

What it does:
  1. reads the preprocessing from the model's metadata (input size, mean, std, RGB order) and
     prepares each image as it says: PIL's `Image.open(p).convert('RGB')` (the pixels crackscope
     decodes), resized only when it is not already at the input size (PIL's bilinear filter is
     not crackscope's, so give images at the input size for an exact comparison);
  2. runs the model with ONNX Runtime (CPU), batch of all images at once (the batch is free);
  3. asks crackscope for the same images: `predict --json` (probabilities) and, for every class,
     `gradcam --json --method gradcam --layer relu_conv10 --class K` (maps);
  4. prints the worst absolute differences: probabilities, and Grad-CAM maps against
     max(cam, 0) rescaled to 0..1 (crackscope's Grad-CAM at relu_conv10);
  5. with --bench, images/s of ONNX Runtime on a batch of --batch images with --threads threads,
     beside `crackscope bench`'s inference figure with the same batch, size and threads.
Exits 1 when probabilities differ by more than 1e-5 or maps by more than 1e-4.

A one-class model (metadata `kind` = one-class) is checked the same way against `gradcam --json`
(its image score and patch distances): worst differences relative to each image's score, and the
verdict at the metadata's threshold; with --bench, ONNX Runtime's images/s (score, patch distances
and smoothed map) beside `crackscope bench`'s one-class scoring rate. Exits 1 when scores or patch
distances differ by more than 1e-4 of the score.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from PIL import Image


def prepare(paths, meta):
    side = int(meta["input_size"])
    mean = np.array(json.loads(meta["mean"]), dtype=np.float32).reshape(3, 1, 1)
    std = np.array(json.loads(meta["std"]), dtype=np.float32).reshape(3, 1, 1)
    assert meta["channel_order"] == "RGB" and meta["input_layout"] == "NCHW"
    batch = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        if image.size != (side, side):
            image = image.resize((side, side), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        batch.append((pixels - mean) / std)
    return np.stack(batch).astype(np.float32)


def gradcam_of(cam):
    relu = np.maximum(cam, 0.0)
    low, high = relu.min(), relu.max()
    return (relu - low) / (high - low) if high > low else np.zeros_like(relu)


def crackscope_json(binary, args):
    out = subprocess.run([binary, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("onnx")
    parser.add_argument("model", help="the run directory or checkpoint that was exported")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--crackscope", default="target/release/crackscope")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--bench", action="store_true")
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    classes = json.loads(meta["classes"])
    print(f"onnxruntime {ort.__version__}; classes {classes}; input size {meta['input_size']}")
    print("inputs:", [(i.name, i.shape) for i in session.get_inputs()])
    print("outputs:", [(o.name, o.shape) for o in session.get_outputs()])

    x = prepare(args.images, meta)
    if meta.get("kind") == "one-class":
        check_one_class(session, meta, x, args)
        return
    probabilities, cam = session.run(["probabilities", "cam"], {"image": x})

    predicted = crackscope_json(args.crackscope, ["predict", "--json", "--model", args.model, *args.images])
    worst_p = max(
        float(np.abs(np.array(a["probabilities"], dtype=np.float64) - probabilities[i]).max())
        for i, a in enumerate(predicted)
    )
    worst_map = 0.0
    with tempfile.TemporaryDirectory() as out:
        for k in range(len(classes)):
            records = crackscope_json(
                args.crackscope,
                ["gradcam", "--json", "--method", "gradcam", "--layer", "relu_conv10",
                 "--class", str(k), "--out", out, "--model", args.model, *args.images],
            )
            for i, record in enumerate(records):
                own = np.array(record["cam"], dtype=np.float64)
                worst_map = max(worst_map, float(np.abs(own - gradcam_of(cam[i, k])).max()))
    agree = sum(int(np.argmax(probabilities[i]) == a["index"]) for i, a in enumerate(predicted))
    print(f"{len(args.images)} images: predicted class agrees on {agree}; worst differences: "
          f"probabilities {worst_p:.2e}, Grad-CAM maps {worst_map:.2e}")

    if args.bench:
        ort_rate, own = bench(session, meta, args, "infer_images_per_s")
        print(f"inference, batch {args.batch}, {meta['input_size']} px, {args.threads} threads: "
              f"onnxruntime {ort_rate:.1f} images/s (probabilities and cam), crackscope "
              f"{own:.1f} images/s (logits); ratio onnxruntime / crackscope {ort_rate / own:.2f}")

    if worst_p > 1e-5 or worst_map > 1e-4:
        print("differences above the tolerances (1e-5, 1e-4)")
        sys.exit(1)


def bench(session, meta, args, key):
    """ONNX Runtime's images/s on a batch of --batch images (median of 5 after 2 warm-ups), and
    `crackscope bench`'s figure `key` at the same batch, size and threads."""
    side = int(meta["input_size"])
    batch = np.random.default_rng(0).standard_normal((args.batch, 3, side, side)).astype(np.float32)
    for _ in range(2):
        session.run(None, {"image": batch})
    times = []
    for _ in range(5):
        start = time.perf_counter()
        session.run(None, {"image": batch})
        times.append(time.perf_counter() - start)
    ort_rate = args.batch / float(np.median(times))
    report = crackscope_json(
        args.crackscope,
        ["bench", "--json", "--batch", str(args.batch), "--size", str(side),
         "--threads", str(args.threads), "--reps", "5"],
    )
    return ort_rate, report[key]


def check_one_class(session, meta, x, args):
    """Score and patch distances of a one-class model against `gradcam --json`."""
    threshold = float(meta["threshold"])
    score, patch_scores, anomaly_map = session.run(["score", "patch_scores", "anomaly_map"], {"image": x})
    with tempfile.TemporaryDirectory() as out:
        records = crackscope_json(
            args.crackscope, ["gradcam", "--json", "--out", out, "--model", args.model, *args.images]
        )
    worst_score = worst_patch = 0.0
    agree = 0
    for i, record in enumerate(records):
        own = float(record["score"])
        worst_score = max(worst_score, abs(own - float(score[i])) / own)
        patches = np.array(record["patch_scores"], dtype=np.float64)
        worst_patch = max(worst_patch, float(np.abs(patches - patch_scores[i]).max()) / own)
        agree += int((own > threshold) == (float(score[i]) > threshold))
    print(f"{len(args.images)} images, anomaly map {anomaly_map.shape[1:]}: verdict agrees on "
          f"{agree}; worst differences relative to the image's score: scores {worst_score:.2e}, "
          f"patch distances {worst_patch:.2e}")
    if args.bench:
        ort_rate, own = bench(session, meta, args, "oneclass_score_images_per_s")
        print(f"one-class scoring, batch {args.batch}, {meta['input_size']} px, {args.threads} "
              f"threads: onnxruntime {ort_rate:.1f} images/s (score, patch distances and map), "
              f"crackscope {own:.1f} images/s (score and patch distances); ratio "
              f"{ort_rate / own:.2f}")
    if worst_score > 1e-4 or worst_patch > 1e-4:
        print("differences above the tolerance (1e-4 of the score)")
        sys.exit(1)


if __name__ == "__main__":
    main()
