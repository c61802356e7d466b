"""``tsm export --format web``: a static folder that runs an online model in the browser.

Layout of the folder (any static host serves it)::

    index.html, app.js, ...   the page (src/tsm/web/, shared with ``tsm serve``), with
    tsm.js                    the embeddable module (preprocessing + ONNX Runtime Web)
    local-backend.js          the page's backend that runs tsm.js in the page
    page-config.json          {"backend": "local", "model": "./model/", "smoothWindow": 12, "agree": 2}
    model/model.onnx          the streaming step (frames + caches -> logits + new caches)
    model/classes.json        the class names, in logit order
    model/pipeline.json       the test pipeline (tsm.data.FramePipeline, versioned; its JSON schema
                              is pipeline.schema.json beside tsm.js) and the step's inputs and outputs
    ort/                      ONNX Runtime Web's ES modules and WebAssembly binaries

The folder is built next to ``--out`` and moved into place when complete. The ONNX file comes
from one call, ``write_model(path)``, so other writers (e.g. a quantised model) can replace it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from tsm.data import DataConfig, FramePipeline
from tsm.export.core import ExportCheck, export_model, read_export_metadata
from tsm.export.int8 import Int8Options, Int8Report, export_int8
from tsm.export.onnx import DEFAULT_ONNX_EXPORTER, OnnxExporter
from tsm.export.ort_web import install_ort_web
from tsm.fileio import replace_folder
from tsm.models import DEMO_AGREE, DEMO_SMOOTH_WINDOW, Recognizer, check_streamable

# The page: data files of the package, shared by this export and the live server (tsm.apps.serve).
PAGE_ASSETS = Path(__file__).resolve().parent.parent / "web"
MODEL_FOLDER = "model"
MODEL_FILE = "model.onnx"
ORT_FOLDER = "ort"
PAGE_CONFIG = "page-config.json"
# The page's own files that must be in the folder (the rest of the page comes from the apps).
REQUIRED_ASSETS = ("tsm.js", "local-backend.js", "pipeline.schema.json")

ModelWriter = Callable[[Path], ExportCheck | None]


@dataclass(frozen=True)
class WebExport:
    """A written web folder: where, the model's pipeline, and the streaming export's check."""

    folder: Path
    pipeline: dict[str, Any]
    check: ExportCheck | Int8Report | None


def _graph_inputs(path: Path) -> dict[str, list[int | str]]:
    """Each input of an ONNX file and its shape (symbolic dimensions by name)."""
    import onnx  # the export extra, present: the file was just written with it

    graph = onnx.load(str(path), load_external_data=False).graph
    return {
        value.name: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]
        for value in graph.input
    }


def web_pipeline(model_path: Path, name: str) -> dict[str, Any]:
    """What ``pipeline.json`` says: the test pipeline of the exported streaming step (from its
    metadata) and the names and shapes of its inputs and outputs (from its graph)."""
    metadata = read_export_metadata(model_path)
    if metadata["tsm_export"] != "stream":
        kind = metadata["tsm_export"]
        raise ValueError(f"{model_path} is a {kind} export; the web folder needs the streaming step")
    height, width = metadata["frame_size"]
    spec = FramePipeline.of(DataConfig.from_dict(metadata["data_config"]))
    spec = dataclasses.replace(spec, crop_size=(height, width))  # the file's own frames decide
    shapes = _graph_inputs(model_path)
    frames, *caches = metadata["inputs"]
    logits, *new_caches = metadata["outputs"]
    return {
        **spec.to_dict(),
        "name": name,
        "model": MODEL_FILE,
        "precision": "int8" if "int8" in metadata else "fp32",
        "num_classes": metadata["num_classes"],
        "num_segments": metadata["num_segments"],
        "frame_size": metadata["frame_size"],
        "inputs": {"frames": frames, "caches": [{"name": n, "shape": shapes[n][1:]} for n in caches]},
        "outputs": {"logits": logits, "caches": new_caches},
    }


def _class_names(model_path: Path, count: int) -> list[str]:
    names = read_export_metadata(model_path)["class_names"]
    return list(names) if names else [str(index) for index in range(count)]


def _copy_page(destination: Path) -> None:
    missing = [name for name in REQUIRED_ASSETS if not (PAGE_ASSETS / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the page assets in {PAGE_ASSETS} lack {', '.join(missing)}: reinstall tsm")
    ignore = shutil.ignore_patterns("__pycache__", ".*")
    shutil.copytree(PAGE_ASSETS, destination, ignore=ignore, dirs_exist_ok=True)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")


def _build(folder: Path, write_model: ModelWriter, name: str, ort_web: Path | None) -> WebExport:
    _copy_page(folder)
    install_ort_web(folder / ORT_FOLDER, ort_web)  # before the export: a missing runtime fails fast
    model_path = folder / MODEL_FOLDER / MODEL_FILE
    model_path.parent.mkdir()
    check = write_model(model_path)
    pipeline = web_pipeline(model_path, name)
    _write_json(model_path.parent / "pipeline.json", pipeline)
    _write_json(model_path.parent / "classes.json", _class_names(model_path, pipeline["num_classes"]))
    # The page smooths labels as tsm serve's page does by default: the reference demo's 12 / 2.
    page_config = {"backend": "local", "model": f"./{MODEL_FOLDER}/"}
    page_config |= {"smoothWindow": DEMO_SMOOTH_WINDOW, "agree": DEMO_AGREE}
    _write_json(folder / PAGE_CONFIG, page_config)
    return WebExport(folder, pipeline, check)


def _replaceable(out: Path) -> bool:
    """Whether ``out`` may be replaced: absent, an empty folder, or an earlier web export."""
    if not out.exists():
        return True
    if not out.is_dir():
        return False
    return not any(out.iterdir()) or ((out / PAGE_CONFIG).is_file() and (out / MODEL_FOLDER).is_dir())


def write_web_folder(
    out: str | Path, write_model: ModelWriter, name: str = "model", ort_web: str | Path | None = None
) -> WebExport:
    """Write the web folder ``out`` (atomically: built beside it, then moved into place).

    ``write_model(path)`` writes the streaming ONNX file (with tsm's metadata) and returns its
    check; ``ort_web`` is a copy of the onnxruntime-web package (default: fetched with npm).
    An earlier web export at ``out`` is replaced; any other existing folder is refused.
    """
    out = Path(out)
    if not _replaceable(out):
        raise ValueError(f"--out {out} exists and is not a web export folder: choose a new or empty folder")
    copy_from = Path(ort_web) if ort_web is not None else None
    result = replace_folder(out, lambda folder: _build(folder, write_model, name, copy_from))
    return WebExport(out, result.pipeline, result.check)


def export_web(
    model: Recognizer,
    out: str | Path,
    frame_size: int,
    class_names: Sequence[str] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
    name: str = "model",
    ort_web: str | Path | None = None,
    check: bool = True,
    check_inputs: dict[str, Tensor] | None = None,
    onnx_exporter: OnnxExporter = DEFAULT_ONNX_EXPORTER,
    int8: Int8Options | None = None,
) -> WebExport:
    """Export an online model's streaming step as a web folder: fp32, checked against PyTorch on
    random inputs and ``check_inputs`` unless ``check`` is False; or, with ``int8``, quantized and
    checked as :func:`tsm.export_int8` does (nothing is written when it is refused)."""
    try:
        check_streamable(model)
    except ValueError as error:
        raise ValueError(f"--format web runs the model frame by frame, and {error}") from None
    shared = {
        "streaming": True,
        "frame_size": frame_size,
        "class_names": class_names,
        "data_config": data_config,
    }
    if int8 is not None:
        options = dataclasses.asdict(int8)
        write_model = functools.partial(export_int8, model, **shared, **options, onnx_exporter=onnx_exporter)
    else:
        write_model = functools.partial(
            export_model, model, **shared, check=check, check_inputs=check_inputs, onnx_exporter=onnx_exporter
        )
    return write_web_folder(out, write_model, name, ort_web)
