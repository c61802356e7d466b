"""How teaching's defaults were chosen (tsm.apps.teach.FitSettings; docs/teach.md): accuracy on
held-out clips of new motions, taught from 10 clips per class to the small online base of the tests
(tests/teach_helpers.py: trained on move_right, move_left, grow and shrink), over several draws of
the clips, for each setting of one knob at a time around the defaults.

Run: ``python benchmarks/teach_defaults.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import tsm
from teach_helpers import BASE_FILE, synthetic_video, teachnet_registered
from tsm.apps.teach import ClipFeatures, FeatureCache, FitSettings, TeachProject, fit_classifier
from tsm.data import TrainPipeline
from tsm.inference import prediction_data_config

TASKS = {
    "new motions": ["rotate_clockwise", "move_down"],
    "new reversed pair": ["move_down", "move_up"],
}
MAX_VIEWS = 16


def clip_files(project: TeachProject, names: list[str], count: int, seed: int, resize: int) -> list:
    """``count`` clips of each class, through the project (H.264 at the pipeline's resize)."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as folder:
        return [
            project.add_clip(name, synthetic_video(Path(folder), name, rng), resize)
            for name in names
            for _ in range(count)
        ]


def features(cache: FeatureCache, clips: list, names: list[str]) -> tuple[list[ClipFeatures], torch.Tensor]:
    """The cached features of ``clips`` and their labels."""
    return [cache.features(clip.path) for clip in clips], torch.tensor([names.index(c.label) for c in clips])


def accuracy(found, labels, test, test_labels, settings: FitSettings, views: int, test_view: bool) -> float:
    """Held-out accuracy of a classifier trained on ``views`` augmented views of each clip (and
    its test view with ``test_view``: what fine_tune does)."""
    examples = [clip.examples(views) if test_view else clip.train[:views] for clip in found]
    counts = torch.tensor([len(e) for e in examples])
    classifier, _ = fit_classifier(torch.cat(examples), labels.repeat_interleave(counts), 2, settings)
    with torch.no_grad():
        return (classifier(test).argmax(dim=1) == test_labels).float().mean().item()


VARIANTS = [
    ("defaults", {}),
    ("views 1", {"views": 1}),
    ("views 8", {"views": 8}),
    ("views 16", {"views": 16}),
    ("steps 50", {"steps": 50}),
    ("steps 1000", {"steps": 1000}),
    ("weight_decay 0.01", {"weight_decay": 0.01}),
    ("weight_decay 0.1", {"weight_decay": 0.1}),
    ("lr 0.001", {"lr": 0.001}),
    ("lr 0.1", {"lr": 0.1}),
    ("no crop augmentation", {"crop": False}),
    ("no test view among the examples", {"test_view": False}),
    ("8 training clips (held_out 0.2)", {"train_clips": 8}),
]


def run_task(base, config, names: list[str], draws: int, root: Path) -> dict[str, list[float]]:
    defaults = FitSettings()
    scores: dict[str, list[float]] = {name: [] for name, _ in VARIANTS}
    cache = FeatureCache(base, config, dataclasses.replace(defaults, views=MAX_VIEWS))
    plain = FeatureCache(base, config, dataclasses.replace(defaults, views=MAX_VIEWS))
    plain.train_pipeline = TrainPipeline(plain.config.replace(train_pipeline="center_crop"))
    for draw in range(draws):
        project = TeachProject(root / f"{'-'.join(names)}-{draw}")
        train = clip_files(project, names, 10, seed=100 + draw, resize=config.resize)
        held_out = TeachProject(root / f"test-{draw}-{'-'.join(names)}")
        test = clip_files(held_out, names, 40, 200 + draw, config.resize)
        started = time.perf_counter()
        found, labels = features(cache, train, names)
        print(f"  draw {draw}: features {1e3 * (time.perf_counter() - started) / len(train):.0f} ms per clip")
        test_found, test_labels = features(cache, test, names)
        test_features = torch.stack([clip.test for clip in test_found])
        plain_found, _ = features(plain, train, names)
        for name, change in VARIANTS:
            fields = {key: value for key, value in change.items() if hasattr(defaults, key)}
            settings = dataclasses.replace(defaults, **fields)
            source = found if change.get("crop", True) else plain_found
            keep = [i % 10 < change.get("train_clips", 10) for i in range(len(train))]
            kept = [clip for clip, keeping in zip(source, keep, strict=True) if keeping]
            kept_labels = labels[torch.tensor(keep)]
            with_test_view = change.get("test_view", True)
            test_set = (test_features, test_labels)
            score = accuracy(kept, kept_labels, *test_set, settings, settings.views, with_test_view)
            scores[name].append(score)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=5, help="draws of the clips per task")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"teaching 2 classes from 10 clips each; accuracy on 80 held-out clips; {args.draws} draws")
    with teachnet_registered(), tempfile.TemporaryDirectory() as folder:
        base, info = tsm.load_checkpoint(BASE_FILE)
        config = prediction_data_config(info, base.num_segments)
        for task, names in TASKS.items():
            print(f"{task}: {', '.join(names)}")
            scores = run_task(base, config, names, args.draws, Path(folder))
            for name, values in scores.items():
                mean, spread = 100 * statistics.mean(values), 100 * statistics.pstdev(values)
                print(f"  {name:<34} {mean:5.1f} % (+- {spread:.1f}, min {100 * min(values):.0f})")


if __name__ == "__main__":
    main()
