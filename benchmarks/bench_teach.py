"""tsm serve --teach: time from Train to live, 3 classes x 10 clips of 3 s at 112.

A ``tsm serve --teach`` app (in this process, on 127.0.0.1) on the online TSM-MobileNetV2 (8
frames, resize 128, crop 112; random weights: the time does not depend on them) gets 30 clips of
3 s (15 frames per second, 160x120, synthetic motions) through ``POST /teach/clips``; then
``POST /teach/train`` starts the clock, which stops when a live stream's first reply comes from
the taught model (the ``switched`` message). Printed: the phases (features of the 30 clips, the
classifier, exporting and switching the engine) and the total, against the 60 s goal.

    python benchmarks/bench_teach.py [--engine auto] [--runs 2]

Before each further run one more clip of each class is added, as a person would before training
again: its features are the only ones computed (the others are kept from the first run). The
export cache is a fresh folder, so every run exports its model. The network that computes the
features is exported once per base, in the background from the server's start (while clips are
recorded); the time that takes is printed last, apart: a Train pressed before it is done waits
for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import tsm
from bench_core import machine_name
from serve_helpers import http_json, png, running_server
from tsm.apps.serve import ServeSettings, create_app
from tsm.apps.teach import FeatureCache, FitSettings
from tsm.data import as_data_config, render_synthetic_clip, write_video

CLASSES = ["wave", "clap", "nothing"]
MOTIONS = {"wave": "rotate_clockwise", "clap": "grow", "nothing": "move_down"}
DATA_CONFIG = {"num_segments": 8, "resize": 128, "input_size": 112, "flip": False}
GOAL_SECONDS = 60.0


def camera_clip(name: str, rng: np.random.Generator, seconds: float = 3.0, fps: int = 15) -> np.ndarray:
    """A 160x120 clip of ``seconds``: a synthetic motion drawn at 120 px, on a wider canvas."""
    frames = render_synthetic_clip(MOTIONS[name], 120, round(seconds * fps), rng)
    canvas = np.zeros((len(frames), 120, 160, 3), np.uint8)
    canvas[:, :, 20:140] = frames
    return canvas


def train_to_live(address: str, frame: bytes) -> tuple[float, dict]:
    """Seconds from POST /teach/train to a live stream's first reply from the taught model."""
    with connect(f"ws://{address}/ws/stream") as stream:
        stream.send(frame)
        stream.recv()
        started = time.perf_counter()
        status, body = http_json(address, "/teach/train", b"")
        if status != 202:
            raise RuntimeError(f"POST /teach/train answered {status}: {body}")
        while True:
            stream.send(frame)
            reply = json.loads(stream.recv())
            if "switched" in reply:
                seconds = time.perf_counter() - started
                status = http_json(address, "/teach/status")[1]
                while status["state"] == "running":  # the run's log is written just after the switch
                    time.sleep(0.05)
                    status = http_json(address, "/teach/status")[1]
                return seconds, status
            if http_json(address, "/teach/status")[1]["state"] == "failed":
                raise RuntimeError(http_json(address, "/teach/status")[1]["error"])
            time.sleep(0.05)


def add_clips(address: str, root: Path, rng: np.random.Generator, per_class: int) -> None:
    for name in CLASSES:
        for _ in range(per_class):
            video = write_video(root / "clip.mp4", camera_clip(name, rng))
            status, body = http_json(address, f"/teach/clips?label={name}", video.read_bytes())
            if status != 201:
                raise RuntimeError(f"POST /teach/clips answered {status}: {body}")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        os.environ["TSM_EXPORT_CACHE"] = str(root / "export-cache")
        base = tsm.create_model("tsm_online_mobilenet_v2", num_classes=27, num_segments=8).eval()
        checkpoint = tsm.save_checkpoint(root / "base.safetensors", base, None, DATA_CONFIG)
        app = create_app(checkpoint, engine=args.engine, teach=root / "project", settings=ServeSettings())
        frame = png(torch.from_numpy(camera_clip("wave", rng)[0]).permute(2, 0, 1))
        with running_server(app, timeout=60) as address:
            started = time.perf_counter()
            add_clips(address, root, rng, 10)
            upload = (time.perf_counter() - started) / 30
            print(f"tsm serve --teach, {machine_name(torch.device('cpu'))}, engine {args.engine}")
            print(f"30 clips of 3 s added: {1e3 * upload:.0f} ms per clip (upload, decode, H.264 at 128)")
            for run in range(1, args.runs + 1):
                if run > 1:
                    add_clips(address, root, rng, 1)
                seconds, status = train_to_live(address, frame)
                verdict = "met" if seconds <= GOAL_SECONDS else "not met"
                print(
                    f"run {run} ({status['clips_total']} clips): Train to live {seconds:.1f} s "
                    f"(goal {GOAL_SECONDS:.0f} s: {verdict}); features {status['seconds_features']} s, "
                    f"classifier {status['seconds_training']} s, export and switch "
                    f"{status['seconds_serving']} s"
                )
            print(f"served: {http_json(address, '/info')[1]['engine_reason']}")
        os.environ["TSM_EXPORT_CACHE"] = str(root / "fresh-export-cache")
        cache = FeatureCache(base, as_data_config(DATA_CONFIG), FitSettings(), args.engine)
        started = time.perf_counter()
        engine = cache.engine()
        print(f"first use of a base: its feature network readied in {time.perf_counter() - started:.1f} s")
        print(f"  ({engine.reason})")


if __name__ == "__main__":
    main()
