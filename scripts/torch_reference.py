#!/usr/bin/env python3
"""Reference numbers for crackscope's SqueezeNet tests, computed with PyTorch + torchvision.

The Rust tests in src/model/ embed the numbers this script prints; re-run it after changing the test
inputs and paste the new values there.

    /tmp/torchenv/bin/python scripts/torch_reference.py [DATA_DIR]

DATA_DIR defaults to ../shared/data beside the repository. What it does:
  1. loads pretrained/squeezenet1_1.pth into torchvision's squeezenet1_1 (eval mode, no extra head);
  2. feeds a batch of two 227x227 brickwork photos (Positive/00001.jpg, Negative/00001.jpg) decoded to
     RGB uint8, scaled by 1/255 and normalised with the ImageNet mean/std, no resizing;
  3. prints pixel checksums (so the Rust side can prove it decoded the same pixels), the top-5 logits,
     statistics of intermediate feature maps, and gradients of logit[top-1] summed over the batch with
     respect to a few parameters (norms and single entries);
  4. classifies pretrained/kitten.jpg with torchvision's usual preprocessing (resize 256, centre crop 224).
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def normalise(rgb_u8: np.ndarray) -> torch.Tensor:
    """HWC uint8 -> CHW float32, exactly as the Rust test does it: (v / 255 - mean) / std in f32."""
    x = rgb_u8.astype(np.float32) / np.float32(255.0)
    x = (x - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def stats(name: str, t: torch.Tensor) -> None:
    t = t.double()
    print(f"{name}: shape {tuple(t.shape)} mean {t.mean().item():.9e} std {t.std().item():.9e} "
          f"sum_abs {t.abs().sum().item():.9e}")


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else root.parent / "shared" / "data"
    torch.set_grad_enabled(True)

    net = torchvision.models.squeezenet1_1()
    state = torch.load(data / "pretrained" / "squeezenet1_1.pth", map_location="cpu")
    net.load_state_dict(state)
    net.eval()

    photos = [data / "brickwork-cracks" / "Positive" / "00001.jpg",
              data / "brickwork-cracks" / "Negative" / "00001.jpg"]
    batch = []
    for p in photos:
        rgb = np.asarray(Image.open(p).convert("RGB"))
        print(f"pixels {p.relative_to(data)}: shape {rgb.shape} sum {int(rgb.astype(np.int64).sum())} "
              f"weighted {int((rgb.astype(np.int64).reshape(-1) * (np.arange(rgb.size) % 7 + 1)).sum())}")
        batch.append(normalise(rgb))
    x = torch.stack(batch)

    # Feature maps at a few of the MATLAB split points.
    feats = {}
    h = x
    for i, layer in enumerate(net.features):
        h = layer(h)
        feats[i] = h
    h.retain_grad()
    conv10 = net.classifier[2](net.classifier[1](net.classifier[0](h)))
    logits = torch.flatten(net.classifier[3](conv10), 1)
    stats("relu_conv1", feats[1])
    stats("pool1", feats[2])
    stats("fire2-concat", feats[3])
    stats("fire5-concat", feats[7])
    stats("fire9-concat", feats[12])
    stats("relu_conv10", conv10)
    for b in range(x.shape[0]):
        stats(f"relu_conv10[{b}]", conv10[b])
        top = torch.topk(logits[b], 5)
        print(f"top5[{b}] indices {top.indices.tolist()} logits "
              f"{[float(f'{v:.6f}') for v in top.values.tolist()]}")

    top1 = logits.argmax(dim=1)
    objective = logits[torch.arange(x.shape[0]), top1].sum()
    objective.backward()
    print(f"objective sum_b logit[b, top1[b]] = {objective.item():.9e} with top1 {top1.tolist()}")
    for name in ["features.0.weight", "features.0.bias", "features.3.squeeze.weight",
                 "features.3.expand3x3.weight", "features.7.expand1x1.bias",
                 "features.12.expand3x3.weight", "classifier.1.weight", "classifier.1.bias"]:
        g = dict(net.named_parameters())[name].grad
        flat = g.reshape(-1)
        print(f"grad {name}: norm {g.double().norm().item():.9e} first {flat[0].item():.9e} "
              f"last {flat[-1].item():.9e}")
    stats("grad fire9-concat", h.grad)

    kitten = Image.open(data / "pretrained" / "kitten.jpg").convert("RGB")
    prep = torchvision.transforms.Compose([
        torchvision.transforms.Resize(256),
        torchvision.transforms.CenterCrop(224),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize(MEAN.tolist(), STD.tolist()),
    ])
    with torch.no_grad():
        probs = torch.softmax(net(prep(kitten).unsqueeze(0))[0], 0)
    top = torch.topk(probs, 5)
    print(f"kitten top5 {top.indices.tolist()} probs {[round(v, 3) for v in top.values.tolist()]}")


if __name__ == "__main__":
    main()
