#!/usr/bin/env python3
"""The `crackscope bench` workload in PyTorch, for a side-by-side comparison.

Same network (torchvision squeezenet1_1 + Linear(1000 -> 2) head), batch, input size, thread count and
optimizer (Adam, lr 2e-4, L2 1e-4) as `crackscope bench`; prints the same figures under the same keys.
Never needed by the tests or CI. Usage (see README, "Benchmarks"):

    python3 scripts/bench_torch.py --threads 2 --batch 32 --size 227 [--data DIR] [--device cpu|cuda]

--data is a folder-per-class image set (e.g. from `crackscope synth`) for the input-pipeline figure;
without it that figure is left out.
"""
import argparse
import json
import os
import resource
import statistics
import time

import torch
import torch.nn as nn
import torchvision


def median_time(fn, warmup, reps, sync):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(device):
    net = torchvision.models.squeezenet1_1(weights=None)
    return nn.Sequential(net, nn.Linear(1000, 2)).to(device)


def pipeline_images_per_s(data_dir, size, translate=30, limit=512):
    """Decode + resize + flip + translate + normalise, as a DataLoader worker would, on one thread."""
    from PIL import Image
    import torchvision.transforms.v2 as T

    paths = []
    for root, _, files in os.walk(data_dir):
        paths += [os.path.join(root, f) for f in files if f.lower().endswith((".jpg", ".jpeg", ".png"))]
    paths = sorted(paths)[:limit]
    tf = T.Compose([
        T.Resize((size, size)),
        T.RandomHorizontalFlip(),
        T.RandomAffine(degrees=0, translate=(translate / size, translate / size)),
        T.ToImage(),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    start = time.perf_counter()
    for p in paths:
        tf(Image.open(p).convert("RGB"))
    return len(paths) / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=227)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = build(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 2, (args.batch,), device=device)
    loss_fn = nn.CrossEntropyLoss()

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    def infer():
        model.eval()
        with torch.no_grad():
            model(x)

    # Grad-CAM at relu_conv10 (features -> classifier's ReLU output) for one image.
    squeeze = model[0]
    head = model[1]
    one = x[:1]

    def gradcam():
        model.eval()
        feats = squeeze.features(one)
        conv10 = squeeze.classifier[2](squeeze.classifier[1](squeeze.classifier[0](feats)))
        conv10.retain_grad()
        logits = head(torch.flatten(squeeze.classifier[3](conv10), 1))
        logits[0, logits.argmax()].backward()
        weights = conv10.grad.mean(dim=(2, 3), keepdim=True)
        torch.relu((weights * conv10).sum(1)).detach()

    train_s = median_time(train_step, args.warmup, args.reps, sync)
    infer_s = median_time(infer, args.warmup, args.reps, sync)
    cam_s = median_time(gradcam, args.warmup, args.reps * 4, sync)
    result = {
        "engine": f"pytorch {torch.__version__}",
        "device": args.device,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "size": args.size,
        "train_images_per_s": args.batch / train_s,
        "infer_images_per_s": args.batch / infer_s,
        "gradcam_ms": cam_s * 1000,
        "pipeline_images_per_s": pipeline_images_per_s(args.data, args.size) if args.data else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
