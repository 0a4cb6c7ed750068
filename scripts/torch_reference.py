#!/usr/bin/env python3
"""Reference numbers for crackscope's SqueezeNet tests, computed with PyTorch + torchvision.

The Rust tests in src/model/ embed the numbers this script prints; re-run it after changing the test
inputs and paste the new values there.

    /tmp/torchenv/bin/python scripts/torch_reference.py [DATA_DIR]

    /tmp/torchenv/bin/python scripts/torch_reference.py --maps [DATA_DIR [OUT_DIR]]

DATA_DIR defaults to ../shared/data beside the repository. What it does:
  1. loads pretrained/squeezenet1_1.pth into torchvision's squeezenet1_1 (eval mode, no extra head);
  2. feeds a batch of two synthetic 227x227 brick-wall images (`synthetic_bricks`, integer arithmetic
     that the Rust test repeats bit for bit), scaled by 1/255 and normalised with the ImageNet mean/std;
  3. prints pixel checksums (so the Rust side can prove it built the same pixels), the top-5 logits,
     statistics of intermediate feature maps, and gradients of logit[top-1] summed over the batch with
     respect to a few parameters (norms and single entries);
  4. classifies pretrained/kitten.jpg with torchvision's usual preprocessing (resize 256, centre crop 224).

With --maps it instead writes reference numbers for checkpoints with random heads on shared JPEG
photos, in float64, into OUT_DIR (default target/torch-reference, read by the Rust test
`classify::tests::probabilities_and_maps_agree_with_pytorch_float64`):
  - random-head.safetensors: the shared ImageNet weights plus a Linear(1000, 2) head drawn with
    torch.manual_seed(0), in crackscope's checkpoint format (classes and input_size metadata);
  - png/<n>.png: each photo as PIL decodes it (`Image.open(p).convert('RGB')`), losslessly, so the
    comparison can be made on identical pixels whatever JPEG decoder crackscope uses;
  - reference.json: per photo, the softmax probabilities, the seed's map and Grad-CAM's map at
    relu_conv10 (14 x 14 for 227 px, rescaled to [0, 1] as MATLAB's rescale), for the predicted class.

Why synthetic images rather than the brickwork photos: PIL (libjpeg-turbo) and the `image` crate
(zune-jpeg) decode the same JPEG to slightly different pixels (0.07 levels per value on average for
brickwork-cracks/Positive/00001.jpg), enough to swap near-tied logits; a tight comparison needs
identical input.
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


def synthetic_bricks(index: int, height: int, width: int) -> np.ndarray:
    """A brick wall (mortar lines, per-brick shade, pixel noise, a dark diagonal crack in image 0) as
    HWC uint8, from wrapping 32-bit integer arithmetic only."""
    y, x = np.meshgrid(np.arange(height, dtype=np.int64), np.arange(width, dtype=np.int64), indexing="ij")
    out = np.zeros((height, width, 3), dtype=np.int64)
    row = y // 24
    shifted = x + (row % 2) * 24
    brick = (row * 131 + (shifted // 48) * 71) % 61
    mortar = ((y % 24) < 3) | ((shifted % 48) < 3)
    for c in range(3):
        h = ((x * 73856093) ^ (y * 19349663) ^ (c * 83492791) ^ (index * 2654435761)) & 0xFFFFFFFF
        h = (h * 2246822519) & 0xFFFFFFFF
        noise = (h >> 8) % 41 - 20
        base = np.where(mortar, 200 - 10 * c, 120 + 40 * (c == 0) + brick)
        out[..., c] = base + noise
    if index == 0:
        crack = np.abs(3 * y - 2 * x - 60) < 7
        out[crack] = out[crack] // 4
    return np.clip(out, 0, 255).astype(np.uint8)


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

    batch = []
    for index in range(2):
        rgb = synthetic_bricks(index, 227, 227)
        print(f"pixels synthetic_bricks({index}): shape {rgb.shape} sum {int(rgb.astype(np.int64).sum())} "
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
        top = torch.topk(logits[b], 6)
        print(f"top6[{b}] indices {top.indices.tolist()} logits "
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


PHOTOS = [
    "concrete-samples/Positive/00001_original.jpg",
    "concrete-samples/Positive/00002_original.jpg",
    "concrete-samples/Positive/00003_original.jpg",
    "brickwork-cracks/Negative/00001.jpg",
    "brickwork-cracks/Negative/00002.jpg",
    "brickwork-cracks/Positive/00001.jpg",
    "brickwork-cracks/Positive/00002.jpg",
    "concrete-ozgenel/Negative/02999.jpg",
]
SIZE = 227


def rescale(cam: torch.Tensor) -> torch.Tensor:
    """MATLAB's rescale: min -> 0, max -> 1; a constant map becomes zeros."""
    lo, hi = cam.min(), cam.max()
    return torch.zeros_like(cam) if hi <= lo else (cam - lo) / (hi - lo)


def maps(data: Path, out: Path) -> None:
    import json
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    (out / "png").mkdir(exist_ok=True)
    net = torchvision.models.squeezenet1_1()
    net.load_state_dict(torch.load(data / "pretrained" / "squeezenet1_1.pth", map_location="cpu"))
    torch.manual_seed(0)
    head = torch.nn.Linear(1000, 2)
    state = {k: v.float().contiguous() for k, v in net.state_dict().items()}
    state["head.weight"] = head.weight.detach().float().contiguous()
    state["head.bias"] = head.bias.detach().float().contiguous()
    classes = ["Negative", "Positive"]
    save_file(state, str(out / "random-head.safetensors"),
              metadata={"classes": json.dumps(classes), "input_size": str(SIZE)})
    # The same float32 values, computed in float64.
    net = net.double().eval()
    head = head.double().eval()
    mean = torch.tensor(MEAN.tolist(), dtype=torch.float64).view(3, 1, 1)
    std = torch.tensor(STD.tolist(), dtype=torch.float64).view(3, 1, 1)
    entries = []
    for i, relative in enumerate(PHOTOS):
        image = Image.open(data / relative).convert("RGB")
        if image.size != (SIZE, SIZE):
            print(f"skipping {relative}: {image.size} is not {SIZE} x {SIZE}")
            continue
        png = f"{i}.png"
        image.save(out / "png" / png)
        pixels = torch.from_numpy(np.asarray(image).astype(np.float64)).permute(2, 0, 1)
        x = ((pixels / 255.0 - mean) / std).unsqueeze(0)
        features = net.features(x)
        a = net.classifier[2](net.classifier[1](net.classifier[0](features)))  # relu_conv10
        logits = head(torch.flatten(net.classifier[3](a), 1))[0]
        probabilities = torch.softmax(logits, 0)
        c = int(logits.argmax())
        (d_prob,) = torch.autograd.grad(probabilities[c], a, retain_graph=True)
        seed = rescale((d_prob.sum(dim=(2, 3), keepdim=True) * a).sum(1)[0])
        (d_logit,) = torch.autograd.grad(logits[c], a)
        gradcam = rescale(torch.relu((d_logit.mean(dim=(2, 3), keepdim=True) * a).sum(1)[0]))
        entries.append({
            "photo": relative,
            "png": png,
            "predicted": c,
            "probabilities": probabilities.tolist(),
            "seed": seed.tolist(),
            "gradcam": gradcam.tolist(),
        })
        print(f"{relative}: p = {[round(p, 6) for p in probabilities.tolist()]}")
    with open(out / "reference.json", "w") as f:
        json.dump({"layer": "relu_conv10", "input_size": SIZE, "photos": entries}, f)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--maps":
        root = Path(__file__).resolve().parent.parent
        data = Path(sys.argv[2]) if len(sys.argv) > 2 else root.parent / "shared" / "data"
        out = Path(sys.argv[3]) if len(sys.argv) > 3 else root / "target" / "torch-reference"
        maps(data, out)
    else:
        main()
