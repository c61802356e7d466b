"""Optimizer, schedules, multi-view averaging and metrics against hand computations."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DistributedSampler, TensorDataset

from tsm import average_views, create_model, multi_view_scores
from tsm.training import (
    build_optimizer,
    build_scheduler,
    compute_metrics,
    first_of_each_sample,
    lr_factor,
    write_evaluation_report,
)


def test_step_schedule_with_warmup_matches_hand_values() -> None:
    # 10 steps per epoch, 2 warm-up epochs from 1% of the lr, decay x0.1 at epochs 4 and 6.
    factors = [lr_factor(s, 10, 8, "step", (4, 6), 0.1, warmup_epochs=2) for s in range(80)]
    assert factors[0] == pytest.approx(0.01)
    assert factors[10] == pytest.approx(0.01 + 0.99 * 10 / 20)
    assert factors[20:40] == pytest.approx([1.0] * 20)
    assert factors[40:60] == pytest.approx([0.1] * 20)
    assert factors[60:80] == pytest.approx([0.01] * 20)


def test_cosine_schedule_anneals_to_zero_after_warmup() -> None:
    assert lr_factor(5, 10, 4, "cosine", warmup_epochs=1) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(10, 10, 4, "cosine", warmup_epochs=1) == pytest.approx(1.0)
    assert lr_factor(25, 10, 4, "cosine", warmup_epochs=1) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 0.5))
    )
    assert lr_factor(40, 10, 4, "cosine", warmup_epochs=1) == pytest.approx(0.0)


def test_scheduler_keeps_the_reference_group_multipliers() -> None:
    model = create_model("tsm_resnet18", num_classes=3, num_segments=2)  # ResNet convs have no bias
    optimizer = build_optimizer(model, lr=0.1, weight_decay=1e-4, fc_lr5=True)
    scheduler = build_scheduler(optimizer, steps_per_epoch=2, epochs=4, milestones=[1], gamma=0.1)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    lrs = {group["name"]: group["lr"] for group in optimizer.param_groups}
    decays = {group["name"]: group["weight_decay"] for group in optimizer.param_groups}
    assert lrs == pytest.approx({"weight": 0.01, "norm": 0.01, "fc_weight": 0.05, "fc_bias": 0.1})
    assert decays == pytest.approx({"weight": 1e-4, "norm": 0.0, "fc_weight": 1e-4, "fc_bias": 0.0})
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda opt: build_scheduler(opt, 2, 4, schedule="linear"), "unknown schedule"),
        (lambda opt: build_scheduler(opt, 2, 4, warmup_epochs=5), "warmup_epochs"),
        (lambda opt: build_scheduler(opt, 0, 4), "at least one epoch"),
    ],
)
def test_bad_schedule_settings_say_what_is_wrong(call, message) -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=message):
        call(optimizer)


def test_average_views_by_hand() -> None:
    scores = torch.tensor([[[1.0, 3.0], [3.0, -1.0]]])  # one clip, two views, two classes
    assert average_views(scores, "logits").tolist() == [[2.0, 1.0]]
    p1, p2 = torch.tensor([1.0, 3.0]).softmax(0), torch.tensor([3.0, -1.0]).softmax(0)
    assert torch.allclose(average_views(scores, "softmax"), ((p1 + p2) / 2).unsqueeze(0))
    with pytest.raises(ValueError, match="unknown view average"):
        average_views(scores, "max")


def test_multi_view_scores_equal_a_loop_over_views_and_do_not_depend_on_batching() -> None:
    model = create_model("tsm_resnet18", num_classes=5, num_segments=4).eval()
    clips = torch.randn(3, 2, 4, 3, 32, 32)  # (N, V, T, C, H, W)
    with torch.no_grad():
        batched = multi_view_scores(model, clips, "softmax")
        per_clip = torch.stack(
            [
                torch.stack([model(clips[n, v : v + 1])[0].softmax(0) for v in range(2)]).mean(0)
                for n in range(3)
            ]
        )
        single_view = multi_view_scores(model, clips[:, 0], "logits")
    assert torch.allclose(batched, per_clip, atol=1e-5)
    assert torch.allclose(single_view, model(clips[:, 0]), atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, V, T, C, H, W\)"):
        multi_view_scores(model, clips[0, 0, 0])


def naive_metrics(scores: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[float, float, float]:
    num_classes = scores.shape[1]
    top1 = top5 = 0
    per_class_correct, per_class_total = [0] * num_classes, [0] * num_classes
    for row, label in zip(scores.tolist(), labels.tolist(), strict=True):
        ranked = sorted(range(num_classes), key=lambda c: -row[c])
        top1 += ranked[0] == label
        top5 += label in ranked[:k]
        per_class_total[label] += 1
        per_class_correct[label] += ranked[0] == label
    present = [c for c in range(num_classes) if per_class_total[c]]
    mean_class = sum(per_class_correct[c] / per_class_total[c] for c in present) / len(present)
    n = len(labels)
    return 100 * top1 / n, 100 * top5 / n, 100 * mean_class


@settings(max_examples=25, deadline=None)
@given(num_classes=st.integers(2, 8), num_clips=st.integers(1, 30), seed=st.integers(0, 10_000))
def test_metrics_match_a_naive_count(num_classes: int, num_clips: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(num_clips, num_classes, generator=generator)
    labels = torch.randint(0, num_classes, (num_clips,), generator=generator)
    metrics = compute_metrics(scores, labels, num_classes)
    top1, top5, mean_class = naive_metrics(scores, labels, min(5, num_classes))
    assert metrics.top1 == pytest.approx(top1, abs=1e-4)
    assert metrics.top5 == pytest.approx(top5, abs=1e-4)
    assert metrics.mean_class_accuracy == pytest.approx(mean_class, abs=1e-4)
    assert metrics.num_clips == num_clips


def test_report_files(tmp_path) -> None:
    scores = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    labels = torch.tensor([0, 1, 1, 2])
    names = ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    metrics = write_evaluation_report(tmp_path, scores, labels, ["x", "y", "z"], names)
    assert metrics.top1 == pytest.approx(75.0)
    assert metrics.mean_class_accuracy == pytest.approx(100 * (1 + 0.5 + 1) / 3)
    with open(tmp_path / "confusion_matrix.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["true \\ predicted", "x", "y", "z"]
    assert rows[1:] == [["x", "1", "0", "0"], ["y", "1", "1", "0"], ["z", "0", "0", "1"]]
    with open(tmp_path / "per_class.csv") as handle:
        per_class = {row["class"]: row for row in csv.DictReader(handle)}
    assert per_class["y"]["accuracy"] == "50.00"
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    assert [p["predicted"] for p in predictions] == ["x", "y", "x", "z"]
    assert predictions[2] == {
        "sample": "c.mp4",
        "label": "y",
        "predicted": "x",
        "confidence": pytest.approx(float(torch.tensor([2.0, 0.0, 0.0]).softmax(0)[0]), abs=1e-6),
        "correct": False,
    }
    assert json.loads((tmp_path / "metrics.json").read_text())["num_clips"] == 4
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000
    assert (tmp_path / "predictions.csv").read_text().splitlines()[
        0
    ] == "sample,label,predicted,confidence,correct"


def test_empty_test_set_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no test clips"):
        compute_metrics(torch.empty(0, 3), torch.empty(0, dtype=torch.long), 3)


@pytest.mark.parametrize("num_replicas", [2, 3])
def test_rows_of_distributed_shards_become_one_per_sample_in_dataset_order(num_replicas) -> None:
    """What the ranks of a DDP test gather: DistributedSampler shards (shuffled, padded with repeats
    to even out the ranks) minus a failed sample, concatenated rank after rank."""
    count, failed = 7, 3
    dataset = TensorDataset(torch.arange(count))
    gathered = []
    for rank in range(num_replicas):
        sampler = DistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=5)
        gathered += [index for index in sampler if index != failed]
    assert len(gathered) > count - 1  # the padding repeats some samples
    indices = torch.tensor(gathered)
    keep = first_of_each_sample(indices)
    expected = [index for index in range(count) if index != failed]
    assert indices[keep].tolist() == expected
    assert keep.tolist() == [gathered.index(index) for index in expected]  # the first row of each
