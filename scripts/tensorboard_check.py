#!/usr/bin/env python3
"""Reads a run's TensorBoard event files with TensorBoard's own reader and prints every scalar
and every picture (the test's confusion matrix and heatmaps, PNG-encoded: size and step).

    python scripts/tensorboard_check.py RUN/tensorboard

Needs the `tensorboard` package (a virtual environment outside the repository, for example
`python3 -m venv /work/venvs/onnx && /work/venvs/onnx/bin/pip install tensorboard`). The reader
checks each record's masked CRC-32C; a damaged record ends its reading there.
"""
import sys
from tensorboard.backend.event_processing import event_accumulator
import tensorboard
acc = event_accumulator.EventAccumulator(
    sys.argv[1], size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0}
)
acc.Reload()
print("tensorboard", tensorboard.__version__)
tags = acc.Tags()["scalars"]
print("scalar tags:", tags)
for tag in tags:
    events = acc.Scalars(tag)
    print(f"{tag}: {len(events)} points, first {events[0].step}:{events[0].value:.4f}, last {events[-1].step}:{events[-1].value:.4f}")
images = acc.Tags()["images"]
print("image tags:", images)
for tag in images:
    for event in acc.Images(tag):
        png = event.encoded_image_string
        assert png[:8] == b"\x89PNG\r\n\x1a\n", f"{tag} is not a PNG"
        print(f"{tag}: step {event.step}, {event.width}x{event.height}, {len(png)} bytes of PNG")
