"""The model card (``README.md``) of a tsm model repo: YAML metadata that
``huggingface_hub.ModelCard`` reads (library, task, tags, licence, datasets, base model, the
``model-index`` results), and a body that says what the model is, how to run it, its pipeline,
classes, evaluation and citation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsm.checkpoint import HubConfig, huggingface_hub
from tsm.checkpoint.pretrained import describe_protocol
from tsm.data import PUBLIC_DATASETS

TASK = "video-classification"
CITATION = """@inproceedings{lin2019tsm,
  title={TSM: Temporal Shift Module for Efficient Video Understanding},
  author={Lin, Ji and Gan, Chuang and Han, Song},
  booktitle={Proceedings of the IEEE International Conference on Computer Vision},
  year={2019}
}"""


@dataclass(frozen=True)
class TestMetrics:
    """What a ``tsm test`` metrics file (``metrics.json``) reports, in percent."""

    top1: float
    top5: float
    mean_class_accuracy: float
    num_clips: int

    @classmethod
    def read(cls, path: str | Path) -> TestMetrics:
        """Read ``metrics.json`` as ``tsm test`` writes it; anything else is a one-line error."""
        import json

        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(
                float(values["top1"]),
                float(values["top5"]),
                float(values["mean_class_accuracy"]),
                int(values["num_clips"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{path} is not a tsm test metrics file (metrics.json with top1, top5, "
                f"mean_class_accuracy and num_clips): {type(error).__name__}: {error}"
            ) from None


@dataclass(frozen=True)
class CardDetails:
    """What the card says beyond the repo's config: its name, data, licence, base model, results."""

    repo_id: str
    dataset: str | None = None  # what it was trained and tested on; a tsm dataset name gets its title
    license: str | None = None  # an SPDX id as the Hub spells it ("mit", "apache-2.0", ...)
    base_model: str | None = None  # the Hub repo it was fine-tuned from
    metrics: TestMetrics | None = None
    export_checks: Mapping[str, str] = field(default_factory=dict)  # export name -> its check, one line

    @property
    def dataset_title(self) -> str | None:
        row = PUBLIC_DATASETS.get(self.dataset or "")
        return row.title if row is not None else self.dataset


def _base_model(name: str | None) -> str | None:
    """A Hub repo id from ``ORG/NAME`` or ``hf-hub:ORG/NAME[@REVISION]``."""
    if not name:
        return None
    return name.removeprefix("hf-hub:").partition("@")[0]


def _results(config: HubConfig, details: CardDetails) -> list[Any]:
    """The ``model-index`` entries: the tsm test metrics given, and a mirrored model's reported top-1."""
    hub = huggingface_hub()
    task = {"task_type": TASK, "task_name": "Video Classification"}
    results = []
    if details.metrics is not None:
        dataset = {
            "dataset_type": details.dataset or "custom",
            "dataset_name": details.dataset_title or "test set",
        }
        for name, value in (
            ("top-1 accuracy", details.metrics.top1),
            ("top-5 accuracy", details.metrics.top5),
            ("mean class accuracy", details.metrics.mean_class_accuracy),
        ):
            measured = {"metric_type": "accuracy", "metric_name": name, "metric_value": round(value, 2)}
            results.append(hub.EvalResult(**task, **dataset, **measured, dataset_split="test"))
    record = config.published
    if record is not None and record.top1 is not None:
        dataset = {"dataset_type": details.dataset or "custom", "dataset_name": record.top1_measured_on}
        name = f"top-1 accuracy reported by {record.publisher} ({record.protocol})"
        measured = {"metric_type": "accuracy", "metric_name": name, "metric_value": record.top1}
        results.append(hub.EvalResult(**task, **dataset, **measured, dataset_split="validation"))
    return results


def card_metadata(config: HubConfig, details: CardDetails) -> Any:
    """The card's YAML metadata as a ``huggingface_hub.ModelCardData``."""
    published = config.published
    tags = ["tsm", "temporal-shift-module", "action-recognition", TASK]
    tags += ["online" if config.online else "offline", config.model_config.backbone]
    tags += [config.architecture] if config.architecture else []
    return huggingface_hub().ModelCardData(
        library_name="tsm",
        pipeline_tag=TASK,
        tags=tags,
        license=details.license or (published.license if published is not None else None),
        datasets=[details.dataset] if details.dataset else None,
        base_model=_base_model(details.base_model),
        model_name=details.repo_id.rsplit("/", 1)[-1],
        eval_results=_results(config, details) or None,
    )


def _what_it_is(config: HubConfig, details: CardDetails) -> str:
    network = config.architecture or f"a TSM network on {config.model_config.backbone}"
    if config.online:
        kind = (
            "an online (uni-directional) model: it runs on a stream frame by frame, each frame one pass "
            "of the 2D network"
        )
    else:
        kind = f"an offline model: it classifies clips of {config.num_frames} frames"
    trained = f", trained on {details.dataset_title}" if details.dataset else ""
    text = [
        f"A [TSM](https://arxiv.org/abs/1811.08383) (Temporal Shift Module) video classifier of "
        f"{config.num_frames} frames per clip and {config.model_config.num_classes} classes{trained}, "
        f"`{network}` in tsm, the Python library: {kind}. Written by tsm {config.tsm_version}."
    ]
    record = config.published
    if record is not None:
        text.append(
            f"\nA mirror of `{record.name}`, published by {record.publisher} at <{record.url}> "
            f"(sha256 `{record.sha256}`), under the licence of its publisher's repository: "
            f"`{record.license}` ({record.license_source}). `model.safetensors` is that file converted "
            f"into tsm's format (the same logits, checked when the mirror was made); `{record.path_in_repo}` "
            "is the published file, "
            "byte for byte: `TSM_HUB_MIRROR` fetches it and checks its sha256."
        )
    return "\n".join(text)


def _how_to_run(config: HubConfig, repo: str) -> str:
    name = f"hf-hub:{repo}"
    lines = [
        "```bash",
        "pip install 'tsm[hub]'",
        f"tsm predict video.mp4 --checkpoint {name} --topk 5",
    ]
    if config.online:
        lines += [
            f"tsm stream video.mp4 --checkpoint {name} --out-video labelled.mp4   # or 0: the camera",
            f"tsm serve --checkpoint {name}          # the live page, http://127.0.0.1:8000/",
            f"tsm export {name} --format web --out site/ --serve   # in the browser, on the device",
        ]
    else:
        lines += [
            f"tsm serve --checkpoint {name}   # a sliding window of the last {config.num_frames} frames"
        ]
    lines += [
        "```",
        "",
        "```python",
        "import tsm",
        "",
        f'model, info = tsm.load_checkpoint("{name}")   # or tsm.create_model("{name}", pretrained=True)',
        f'print(tsm.predict(["video.mp4"], "{name}")[0].classes)   # the test pipeline below',
        "```",
    ]
    return "\n".join(lines)


def _pipeline(config: HubConfig) -> str:
    data = config.data_config
    rows = [
        ("frames per clip", f"{config.num_frames} ({data.sampling} sampling)"),
        ("test views", describe_protocol(data.replace(num_segments=config.num_frames))),
        ("resize (short side)", str(data.resize)),
        ("crop", str(data.test_crop_size)),
        ("mean / std (RGB, 0-1)", f"{list(data.mean)} / {list(data.std)}"),
        ("views averaged as", config.view_average),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    whole = "The whole pipeline is `data_config` in `config.json`."
    return f"| setting | value |\n| --- | --- |\n{table}\n\n{whole}"


def _classes(config: HubConfig) -> str:
    listed = "\n".join(f"{index}. {name}" for index, name in enumerate(config.label_names))
    count = len(config.label_names)
    return f"<details><summary>{count} classes, in logit order</summary>\n\n```\n{listed}\n```\n\n</details>"


def _evaluation(config: HubConfig, details: CardDetails) -> str:
    lines = []
    if details.metrics is not None:
        metrics = details.metrics
        lines.append(
            f"`tsm test` on {details.dataset_title or 'the test set'} ({metrics.num_clips} clips, "
            f"{describe_protocol(config.data_config)}): top-1 {metrics.top1:.2f}%, top-5 "
            f"{metrics.top5:.2f}%, mean class accuracy {metrics.mean_class_accuracy:.2f}%."
        )
    record = config.published
    if record is not None:
        figure = f"top-1 {record.top1}%" if record.top1 is not None else "no accuracy"
        lines.append(
            f"{record.publisher} reports {figure} on the {record.top1_measured_on}, {record.protocol} "
            f"({record.reported_in}). tsm has not reproduced this figure."
        )
    return "\n\n".join(lines) or "No evaluation was given when this repo was written."


def _exports(config: HubConfig, details: CardDetails) -> str:
    rows = [
        f"| {name} | `{path}` | {details.export_checks.get(name, '')} |"
        for name, path in config.exports.items()
    ]
    kind = (
        "the streaming step (frame + caches in, logits + caches out)" if config.online else "the clip model"
    )
    return (
        f"Each file is {kind}, checked against PyTorch as `tsm export` checks it.\n\n"
        "| export | file | check |\n| --- | --- | --- |\n" + "\n".join(rows)
    )


def card_body(config: HubConfig, details: CardDetails) -> str:
    """The card's Markdown below the metadata."""
    sections = [
        f"# {details.repo_id.rsplit('/', 1)[-1]}\n\n{_what_it_is(config, details)}",
        f"## How to run it\n\n{_how_to_run(config, details.repo_id)}",
        f"## Pipeline\n\n{_pipeline(config)}",
        f"## Classes\n\n{_classes(config)}",
        f"## Evaluation\n\n{_evaluation(config, details)}",
    ]
    if config.exports:
        sections.append(f"## Exports\n\n{_exports(config, details)}")
    sections.append(f"## Citation\n\n```bibtex\n{CITATION}\n```")
    return "\n\n".join(sections) + "\n"


def write_model_card(path: str | Path, config: HubConfig, details: CardDetails) -> Path:
    """Write the card (metadata and body) to ``path`` (a repo's ``README.md``)."""
    hub = huggingface_hub()
    card = hub.ModelCard(
        f"---\n{card_metadata(config, details).to_yaml()}\n---\n\n{card_body(config, details)}"
    )
    Path(path).write_text(str(card), encoding="utf-8")
    return Path(path)
