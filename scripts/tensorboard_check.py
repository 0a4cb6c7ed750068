#!/usr/bin/env python3
"""Reads a run's TensorBoard event files with TensorBoard's own reader and prints every scalar.

    python scripts/tensorboard_check.py RUN/tensorboard

Needs the `tensorboard` package (a virtual environment outside the repository, for example
`python3 -m venv /work/venvs/onnx && /work/venvs/onnx/bin/pip install tensorboard`). The reader
checks each record's masked CRC-32C; a damaged record ends its reading there.
"""
import sys
from tensorboard.backend.event_processing import event_accumulator
import tensorboard
acc = event_accumulator.EventAccumulator(sys.argv[1], size_guidance={event_accumulator.SCALARS: 0})
acc.Reload()
print("tensorboard", tensorboard.__version__)
tags = acc.Tags()["scalars"]
print("scalar tags:", tags)
for tag in tags:
    events = acc.Scalars(tag)
    print(f"{tag}: {len(events)} points, first {events[0].step}:{events[0].value:.4f}, last {events[-1].step}:{events[-1].value:.4f}")
