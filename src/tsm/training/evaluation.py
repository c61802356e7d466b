"""Multi-view testing and the evaluation report (metrics, confusion matrix, per-class table, predictions)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix


def first_of_each_sample(indices: Tensor) -> Tensor:
    """Positions of the first row of each sample, in sample-index order: rows gathered from every
    rank in any order (DistributedSampler also repeats a few to even out the ranks) become one
    row per sample, in dataset order."""
    unique, inverse = torch.unique(indices, return_inverse=True)
    positions = torch.arange(len(indices))
    first = torch.full((len(unique),), len(indices), dtype=torch.long)
    return first.scatter_reduce(0, inverse, positions, reduce="amin")


@dataclass
class EvaluationMetrics:
    """Accuracies in percent over ``num_clips`` test clips."""

    top1: float
    top5: float
    mean_class_accuracy: float
    num_clips: int


def compute_metrics(scores: Tensor, labels: Tensor, num_classes: int) -> EvaluationMetrics:
    """Top-1, top-5 (top-K when there are fewer than 5 classes) and mean per-class accuracy.

    The mean per-class accuracy averages the recall of the classes present in ``labels`` (as
    MMAction2 does); a class with no test clip does not count as 0.
    """
    if len(scores) == 0:
        raise ValueError("no test clips were evaluated: the test set is empty or every sample failed")

    def top_k_accuracy(top_k: int) -> float:
        return 100.0 * float(multiclass_accuracy(scores, labels, num_classes, average="micro", top_k=top_k))

    matrix = confusion_matrix(scores, labels, num_classes)
    clips_per_class = matrix.sum(dim=1)
    present = clips_per_class > 0
    recall = matrix.diagonal()[present].double() / clips_per_class[present]
    return EvaluationMetrics(
        top1=top_k_accuracy(1),
        top5=top_k_accuracy(min(5, num_classes)),
        mean_class_accuracy=100.0 * float(recall.mean()),
        num_clips=len(labels),
    )


def confusion_matrix(scores: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Counts (true class, predicted class), shape (K, K)."""
    return multiclass_confusion_matrix(scores, labels, num_classes)


def plot_confusion_matrix(
    matrix: Tensor, class_names: Sequence[str], path: str | Path, title: str = ""
) -> None:
    """Save the confusion matrix (rows: true class, columns: predicted) as a PNG, drawn by
    torchmetrics on a figure of its own (no pyplot state, no backend switch)."""
    from matplotlib.figure import Figure
    from torchmetrics.utilities.plot import plot_confusion_matrix as draw_confusion_matrix

    size = max(4.0, 0.45 * len(class_names) + 2.0)
    figure = Figure(figsize=(size, size), layout="constrained")
    axis = figure.subplots()
    draw_confusion_matrix(matrix, ax=axis, add_text=len(class_names) <= 30, labels=list(class_names))
    axis.set_title(title or "confusion matrix")
    figure.savefig(path, dpi=100)


def write_evaluation_report(
    out_dir: str | Path,
    scores: Tensor,
    labels: Tensor,
    class_names: Sequence[str],
    sample_names: Sequence[str] | None = None,
    title: str = "",
) -> EvaluationMetrics:
    """Write metrics.json, confusion_matrix.csv/.png, per_class.csv and predictions.csv/.json.

    ``scores`` (N, K) are the clip scores after view averaging, ``labels`` (N,) the true classes,
    ``sample_names`` (e.g. video paths) name the rows of the predictions.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    num_classes = len(class_names)
    if scores.dim() != 2 or scores.shape[1] != num_classes:
        raise ValueError(f"scores shaped {tuple(scores.shape)} do not match {num_classes} class names")
    scores, labels = scores.float().cpu(), labels.long().cpu()
    metrics = compute_metrics(scores, labels, num_classes)
    matrix = confusion_matrix(scores, labels, num_classes)
    (out / "metrics.json").write_text(json.dumps(asdict(metrics), indent=2) + "\n")
    with open(out / "confusion_matrix.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *class_names])
        for name, row in zip(class_names, matrix.tolist(), strict=True):
            writer.writerow([name, *row])
    plot_confusion_matrix(matrix, class_names, out / "confusion_matrix.png", title)
    with open(out / "per_class.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", "clips", "correct", "accuracy"])
        for index, name in enumerate(class_names):
            clips, correct = int(matrix[index].sum()), int(matrix[index, index])
            writer.writerow([name, clips, correct, f"{100.0 * correct / clips:.2f}" if clips else ""])
    probabilities = scores.softmax(dim=-1)
    predicted = scores.argmax(dim=-1)
    names = list(sample_names) if sample_names is not None else [str(i) for i in range(len(labels))]
    rows = [
        {
            "sample": name,
            "label": class_names[int(label)],
            "predicted": class_names[int(pred)],
            "confidence": round(float(prob[pred]), 6),
            "correct": bool(label == pred),
        }
        for name, label, pred, prob in zip(names, labels, predicted, probabilities, strict=True)
    ]
    with open(out / "predictions.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "predictions.json").write_text(json.dumps(rows, indent=1) + "\n")
    return metrics
