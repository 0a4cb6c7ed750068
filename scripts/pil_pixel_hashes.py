#!/usr/bin/env python3
"""Record what PIL's `Image.open(p).convert('RGB')` gives for crackscope's decoding tests.

crackscope decodes images to the same RGB pixels as PIL (libjpeg-turbo for JPEG, PIL's rules for
alpha, palettes and 16-bit samples), so that a model trained or explained here sees what PyTorch,
torchvision and MATLAB users see. This script writes the expected pixels' hashes once; the Rust
tests (src/data/decode.rs) compare against them and never need Python.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install pillow numpy blake3
    /tmp/venv/bin/python scripts/pil_pixel_hashes.py [--make-fixtures] [--data ../shared/data]

--make-fixtures (re)writes the small synthetic images of tests/fixtures/decode/ from an image this
script draws itself: JPEG variants the real photos lack (progressive 4:2:0, 4:2:2, CMYK, ...) and
PNGs with alpha, palettes, transparency and 16-bit samples. Without it the committed fixtures are
only hashed. --data points at the shared real photos (default ../shared/data beside the checkout);
their hashes are recorded when the folder exists.

Hash: BLAKE3 of the raw RGB bytes, row by row (width and height are stored beside it). A folder of
many photos is recorded as one hash over its files in sorted order: for each, its path relative to
the data folder, a NUL byte, width and height as little-endian u32, and its 32-byte pixel hash.
"""

import argparse
import io
import json
import os
import struct
import sys
import zlib

import blake3
import numpy as np
import PIL
from PIL import Image, features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "decode")
OUTPUT = os.path.join(ROOT, "tests", "fixtures", "pil_hashes.json")
# Odd sizes: not a multiple of any JPEG block or MCU, so edge handling is covered.
WIDTH, HEIGHT = 67, 45
# Folders of real photos recorded file by file, and folders recorded as one hash each.
PER_FILE = ["photos", "concrete-samples", "pretrained"]
PER_SET = ["brickwork-cracks", "concrete-ozgenel"]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def pattern(width=WIDTH, height=HEIGHT):
    """Smooth gradients, sharp colour edges and a diagonal line: what chroma upsampling and the
    IDCT treat differently across decoders."""
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    g = ((y * 7 + x * 3) % 256).astype(np.uint8)
    b = np.where((x // 9 + y // 7) % 2 == 0, 230, 20).astype(np.uint8)
    line = np.abs(x - y * width // height) < 2
    rgb = np.stack([r, g, b], axis=-1)
    rgb[line] = (250, 250, 0)
    return rgb


def png_bytes(width, height, color_type, bit_depth, rows, extra_chunks=()):
    """A PNG with exactly the colour type, bit depth and chunks asked for (PIL cannot write
    16-bit RGB or a tRNS chunk on 16-bit grey)."""

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\0" + row for row in rows)
    body = [chunk(b"IHDR", header)]
    body += [chunk(tag, data) for tag, data in extra_chunks]
    body += [chunk(b"IDAT", zlib.compress(raw, 9)), chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(body)


def rows_of(array, dtype=None):
    array = array.astype(dtype) if dtype else array
    return [array[i].tobytes() for i in range(array.shape[0])]


def make_fixtures():
    os.makedirs(FIXTURES, exist_ok=True)
    rgb = pattern()
    img = Image.fromarray(rgb, "RGB")
    h, w = rgb.shape[:2]
    written = {}

    def save_jpeg(name, image, **options):
        buf = io.BytesIO()
        image.save(buf, "JPEG", **options)
        written[name] = buf.getvalue()

    save_jpeg("baseline_420.jpg", img, quality=90, subsampling=2)
    save_jpeg("baseline_422.jpg", img, quality=90, subsampling=1)
    save_jpeg("baseline_444.jpg", img, quality=90, subsampling=0)
    save_jpeg("progressive_420.jpg", img, quality=85, subsampling=2, progressive=True)
    save_jpeg("progressive_444.jpg", img, quality=85, subsampling=0, progressive=True)
    save_jpeg("gray.jpg", img.convert("L"), quality=90)
    save_jpeg("gray_progressive.jpg", img.convert("L"), quality=90, progressive=True)
    # PIL writes CMYK JPEGs with an Adobe marker and inverted samples, as Photoshop does.
    save_jpeg("cmyk.jpg", img.convert("CMYK"), quality=90)
    save_jpeg("restart_markers_420.jpg", img, quality=90, subsampling=2, restart_marker_blocks=3)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
    save_jpeg("exif_orientation_6.jpg", img, quality=90, exif=exif)

    # PNGs of every colour type PIL's convert('RGB') treats specially.
    alpha = ((np.arange(w)[None, :] * 255 // (w - 1)) * np.ones((h, 1))).astype(np.uint8)
    gray8 = np.asarray(img.convert("L"))
    # 16-bit grey spanning the full range: PIL clips it at 255 rather than scaling it.
    gray16 = (np.arange(w * h).reshape(h, w) * 65535 // (w * h - 1)).astype(">u2")
    gray16[:, :4] = np.arange(4 * h).reshape(h, 4)  # a few small values that survive the clip
    rgb16 = (rgb.astype(np.uint32) * 257 + np.arange(w)[None, :, None] * 3).astype(">u2")
    alpha16 = (alpha.astype(np.uint32) * 257).astype(">u2")
    written["rgba8.png"] = png_bytes(w, h, 6, 8, rows_of(np.dstack([rgb, alpha])))
    written["la8.png"] = png_bytes(w, h, 4, 8, rows_of(np.dstack([gray8, alpha])))
    written["gray16.png"] = png_bytes(w, h, 0, 16, rows_of(gray16))
    written["gray16_trns.png"] = png_bytes(
        w, h, 0, 16, rows_of(gray16), [(b"tRNS", struct.pack(">H", int(gray16[0, 0])))]
    )
    written["la16.png"] = png_bytes(w, h, 4, 16, rows_of(np.dstack([gray16, alpha16])))
    written["rgb16.png"] = png_bytes(w, h, 2, 16, rows_of(rgb16))
    written["rgba16.png"] = png_bytes(w, h, 6, 16, rows_of(np.dstack([rgb16, alpha16])))
    palette = img.quantize(colors=16)
    indices = np.asarray(palette)
    plte = bytes(palette.getpalette()[: 16 * 3])
    trns = bytes([0, 64, 128, 255] * 4)
    written["palette_trns.png"] = png_bytes(
        w, h, 3, 8, rows_of(indices), [(b"PLTE", plte), (b"tRNS", trns)]
    )
    gray2 = (gray8 >> 6).astype(np.uint8)
    packed = [np.packbits(np.unpackbits(row[:, None], axis=1)[:, 6:].ravel()).tobytes() for row in gray2]
    written["gray2.png"] = png_bytes(w, h, 0, 2, packed)
    written["rgb8_trns.png"] = png_bytes(
        w, h, 2, 8, rows_of(rgb), [(b"tRNS", struct.pack(">HHH", *map(int, rgb[0, 0])))]
    )
    buf = io.BytesIO()
    Image.fromarray(np.asarray(gray16, dtype=np.uint16)).save(buf, "TIFF")
    written["gray16.tif"] = buf.getvalue()
    if features.check("webp"):
        buf = io.BytesIO()
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buf, "WEBP", lossless=True, exact=True)
        written["rgba_lossless.webp"] = buf.getvalue()

    for name, data in sorted(written.items()):
        with open(os.path.join(FIXTURES, name), "wb") as f:
            f.write(data)
        print(f"wrote tests/fixtures/decode/{name} ({len(data)} bytes)")


def rgb_of(path):
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    return rgb.width, rgb.height, blake3.blake3(rgb.tobytes()).digest()


def entry(width, height, digest):
    return {"width": width, "height": height, "blake3": digest.hex()}


def images_under(folder):
    found = []
    for directory, _, files in os.walk(folder):
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(directory, name))
    return found


def relative(path, data):
    return os.path.relpath(path, data).replace(os.sep, "/")


def shared_hashes(data):
    per_file, per_set = {}, {}
    for folder in PER_FILE:
        for path in images_under(os.path.join(data, folder)):
            per_file[relative(path, data)] = entry(*rgb_of(path))
    for folder in PER_SET:
        paths = sorted(images_under(os.path.join(data, folder)), key=lambda p: relative(p, data))
        combined = blake3.blake3()
        for path in paths:
            width, height, digest = rgb_of(path)
            combined.update(relative(path, data).encode() + b"\0")
            combined.update(struct.pack("<II", width, height) + digest)
        per_set[folder] = {"files": len(paths), "blake3": combined.hexdigest()}
        print(f"hashed {len(paths)} images under {folder}")
    return dict(sorted(per_file.items())), per_set


def compact_json(record):
    """Pretty JSON with one line per image, so a changed hash is a one-line diff."""
    lines = []
    for key, value in record.items():
        if isinstance(value, dict):
            inner = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()]
            lines.append(f" {json.dumps(key)}: {{\n" + ",\n".join(inner) + "\n }")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--make-fixtures", action="store_true", help="rewrite tests/fixtures/decode/")
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    args = parser.parse_args()
    if args.make_fixtures:
        make_fixtures()
    fixtures = {
        name: entry(*rgb_of(os.path.join(FIXTURES, name))) for name in sorted(os.listdir(FIXTURES))
    }
    record = {
        "generator": "scripts/pil_pixel_hashes.py",
        "pillow": PIL.__version__,
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "hash": "blake3 of the RGB bytes of Image.open(p).convert('RGB'), row by row",
        "fixtures": fixtures,
    }
    if os.path.isdir(args.data):
        record["shared_files"], record["shared_sets"] = shared_hashes(args.data)
    elif os.path.exists(OUTPUT):
        print(f"no shared data at {args.data}: keeping its recorded hashes", file=sys.stderr)
        with open(OUTPUT) as f:
            previous = json.load(f)
        for key in ("shared_files", "shared_sets"):
            if key in previous:
                record[key] = previous[key]
    with open(OUTPUT + ".part", "w") as f:
        f.write(compact_json(record))
    os.replace(OUTPUT + ".part", OUTPUT)
    print(f"wrote {os.path.relpath(OUTPUT, ROOT)} ({len(fixtures)} fixtures)")


if __name__ == "__main__":
    main()
