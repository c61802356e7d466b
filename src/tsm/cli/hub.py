"""``tsm hub save|push|mirror``: tsm models as Hugging Face Hub repos (``pip install 'tsm[hub]'``).

``save CKPT DIR`` writes the repo folder (weights, config, model card, exports); ``push CKPT
REPO_ID`` uploads it in one commit; ``mirror ORG [NAMES...]`` makes the published reference and
MMAction2 checkpoints repos ``ORG/ARCHITECTURE.TAG``.
"""

from __future__ import annotations

import argparse
from typing import Any

from tsm.checkpoint import HUB_MIRROR_VARIABLE, MIRROR_VARIABLE
from tsm.cli.export import add_calibration_options, calibration_options
from tsm.data import read_class_names
from tsm.export import ONNX_EXPORTERS
from tsm.hub import ExportSettings, hub_exports, mirror_published, push_to_hub, save_pretrained


def _save_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``save_pretrained`` / ``push_to_hub`` the options give."""
    settings = ExportSettings(
        frame_size=args.size,
        onnx_exporter=args.onnx_exporter,
        video=args.video,
        int8=calibration_options(args),
        ort_web=args.ort_web,
    )
    return {
        "class_names": read_class_names(args.class_names) if args.class_names else None,
        "metrics": args.metrics,
        "dataset": args.dataset,
        "license": args.license,
        "base_model": args.base_model,
        "exports": [name.strip() for name in args.exports.split(",") if name.strip()] if args.exports else (),
        "export_settings": settings,
    }


def run_save(args: argparse.Namespace) -> int:
    folder = save_pretrained(args.checkpoint, args.out, repo_id=args.repo_id, **_save_options(args))
    print(f"wrote {folder}: {', '.join(sorted(path.name for path in folder.iterdir()))}")
    return 0


def run_push(args: argparse.Namespace) -> int:
    url = push_to_hub(
        args.checkpoint, args.repo_id, private=args.private, revision=args.revision, **_save_options(args)
    )
    print(f"pushed {args.checkpoint} to {args.repo_id} in one commit: {url}")
    return 0


def run_mirror(args: argparse.Namespace) -> int:
    for model in mirror_published(args.org, args.names, out=args.out, private=args.private):
        print(f"{model.name} -> {model.repo_id}: {model.location} (published file sha256 {model.sha256})")
    return 0


def _add_repo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", metavar="CKPT", help="checkpoint: a file, a published name or hf-hub:ORG/NAME"
    )
    card = parser.add_argument_group("the model card")
    card.add_argument(
        "--class-names", metavar="FILE", help="class names, one per line (default: the checkpoint's)"
    )
    card.add_argument(
        "--metrics", metavar="FILE", help="a tsm test metrics.json: the card's results (model-index)"
    )
    card.add_argument("--dataset", help="what the model was trained and tested on (e.g. ucf101)")
    card.add_argument("--license", help="an SPDX licence id as the Hub spells it (e.g. mit, apache-2.0)")
    card.add_argument("--base-model", metavar="REPO", help="the Hub repo it was fine-tuned from (ORG/NAME)")
    exports = parser.add_argument_group("exports (written and checked as tsm export does)")
    exports.add_argument("--exports", metavar="LIST", help=f"comma-separated, of: {', '.join(hub_exports())}")
    exports.add_argument("--size", type=int, help="frame size of the exports (default: the test crop)")
    exports.add_argument("--video", help="check the exports on this video (default: a synthetic clip)")
    exports.add_argument("--onnx-exporter", choices=ONNX_EXPORTERS, default="dynamo", help="as tsm export's")
    exports.add_argument("--ort-web", metavar="DIR", help="a copy of onnxruntime-web for the web export")
    add_calibration_options(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hub",
        help="tsm models on the Hugging Face Hub: save a repo folder, push it, mirror the published models",
        description="Write, push and mirror tsm model repos (docs/hub.md); load them as hf-hub:ORG/NAME.",
    )
    commands = parser.add_subparsers(dest="hub_command", metavar="COMMAND", required=True)
    save = commands.add_parser(
        "save", help="write the repo folder: weights, config.json, model card, exports"
    )
    _add_repo_options(save)
    save.add_argument("out", metavar="DIR", help="the folder to write (new, empty, or an earlier one)")
    save.add_argument("--repo-id", help="ORG/NAME the card's examples name (default ORG/<DIR name>)")
    save.set_defaults(handler=run_save)
    push = commands.add_parser(
        "push", help="upload the repo folder of a checkpoint to the Hub, in one commit"
    )
    _add_repo_options(push)
    push.add_argument("repo_id", metavar="REPO_ID", help="ORG/NAME (created when missing)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--revision", metavar="BRANCH", help="push to this branch (created when missing)")
    push.set_defaults(handler=run_push)
    mirror = commands.add_parser(
        "mirror",
        help="make the published reference / MMAction2 checkpoints Hub repos ORG/ARCHITECTURE.TAG",
        description=(
            "Download each published checkpoint (verified; TORCH_HOME's cache or "
            f"{MIRROR_VARIABLE}), convert it (checked: the same logits) and push the repo ORG/NAME: the "
            "converted model, the published file under original/, a config and a card with the original "
            f"URL, sha256, licence and reported accuracy. {HUB_MIRROR_VARIABLE}=ORG then makes "
            "pretrained=True fetch from it first."
        ),
    )
    mirror.add_argument("org", metavar="ORG", help="the Hub user or organisation of the mirror")
    mirror.add_argument("names", metavar="NAME", nargs="*", help="published names (default: all tsm builds)")
    mirror.add_argument("--out", metavar="DIR", help="write the repo folders under DIR instead of pushing")
    mirror.add_argument("--private", action="store_true", help="create the repos private")
    mirror.set_defaults(handler=run_mirror)
