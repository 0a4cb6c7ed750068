#!/usr/bin/env python3
"""The seed recipe end to end in PyTorch, on the images of a crackscope run, for a side-by-side time.

Reads RUN/split.json (written by `crackscope train`) so that both tools train, validate and test on
the very same files, and runs the recipe crackscope runs: SqueezeNet v1.1 + Linear(1000 -> classes),
resize to --size, random left-right flip and whole-pixel x/y translation of up to 30 px filled with
black, ImageNet normalisation, Adam (lr 2e-4, betas 0.9/0.999, eps 1e-8) with L2 1e-4 on the weights
only (MATLAB's BiasL2Factor 0), mini-batch 100, 5 epochs, shuffled every epoch, the partial batch
dropped, validation every 30 iterations and at the end, then the test split with the best model.
Never needed by the tests or CI. Prints one JSON object:

    python3 scripts/train_torch.py --run RUN [--weights squeezenet1_1.pth] [--device cuda] [--workers 8]
"""
import argparse
import json
import os
import random
import time

import torch
import torch.nn as nn
import torchvision
from PIL import Image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


class Images(torch.utils.data.Dataset):
    def __init__(self, root, entries, size, augment):
        self.items = [(os.path.join(root, e["path"]), e["label"]) for e in entries]
        self.size, self.augment = size, augment

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        img = Image.open(path).convert("RGB")
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.BILINEAR)
        x = torchvision.transforms.functional.pil_to_tensor(img).float() / 255
        if self.augment:
            if random.random() < 0.5:
                x = x.flip(2)
            dx, dy = random.randint(-30, 30), random.randint(-30, 30)
            shifted = torch.zeros_like(x)
            h, w = x.shape[1:]
            shifted[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
                x[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
            x = shifted
        return (x - MEAN) / STD, label


def evaluate(model, loader, device):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    model.train()
    return correct / max(total, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--weights", default=None, help="torchvision squeezenet1_1 .pth (else from scratch)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", type=int, default=227)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--val-every", type=int, default=30)
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    args = ap.parse_args()

    start = time.perf_counter()
    torch.manual_seed(0)
    random.seed(0)
    device = torch.device(args.device)
    with open(os.path.join(args.run, "split.json")) as f:
        manifest = json.load(f)
    root = manifest["root"]
    if not os.path.isabs(root):
        root = os.path.join(args.run, root) if not os.path.isdir(root) else root
    classes = manifest["classes"]

    net = torchvision.models.squeezenet1_1(weights=None)
    if args.weights:
        net.load_state_dict(torch.load(args.weights, map_location="cpu"))
    model = nn.Sequential(net, nn.Linear(1000, len(classes))).to(device)
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    opt = torch.optim.Adam(
        [{"params": weights, "weight_decay": 1e-4}, {"params": biases, "weight_decay": 0.0}],
        lr=2e-4, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()

    def loader(split, augment, shuffle, drop_last):
        return torch.utils.data.DataLoader(
            Images(root, manifest[split], args.size, augment), batch_size=args.batch,
            shuffle=shuffle, drop_last=drop_last, num_workers=args.workers,
            pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)

    train, val, test = (loader("train", True, True, True), loader("val", False, False, False),
                        loader("test", False, False, False))
    model.train()
    iteration, best, best_state, validations = 0, -1.0, None, 0
    train_start = time.perf_counter()
    for _ in range(args.epochs):
        for x, y in train:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()
            iteration += 1
            if iteration % args.val_every == 0:
                validations += 1
                acc = evaluate(model, val, device)
                if acc > best:
                    best, best_state = acc, {k: v.clone() for k, v in model.state_dict().items()}
    validations += 1
    acc = evaluate(model, val, device)
    if acc > best:
        best, best_state = acc, {k: v.clone() for k, v in model.state_dict().items()}
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - train_start
    model.load_state_dict(best_state)
    test_acc = evaluate(model, test, device)
    print(json.dumps({
        "engine": f"pytorch {torch.__version__}",
        "device": args.device,
        "train_images": len(manifest["train"]),
        "iterations": iteration,
        "validations": validations,
        "train_s": train_s,
        "train_images_per_s": iteration * args.batch / train_s,
        "best_val_accuracy": best,
        "test_accuracy": test_acc,
        "wall_s": time.perf_counter() - start,
    }))


if __name__ == "__main__":
    main()
