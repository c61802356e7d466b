"""``tsm hub mirror ORG``: the published checkpoints of the reference and of MMAction2 as Hub repos
``ORG/ARCHITECTURE.TAG``, where links do not break (the reference's weights have moved hosts three
times).

Each repo is the published file converted into tsm's format (checked: the same logits), the
published file itself as ``original/<file name>`` (what ``TSM_HUB_MIRROR`` fetches and verifies),
a ``config.json`` that records the original URL, the file's sha256, the publisher's licence and its
reported accuracy with its protocol, and a card that says all of it. The published file comes
through :mod:`tsm.download` (torch's hub cache, ``TSM_WEIGHTS_MIRROR``), verified as always.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tsm.checkpoint import (
    PretrainedInfo,
    PublishedRecord,
    convert_checkpoint,
    huggingface_hub,
    list_pretrained,
    load_checkpoint,
    mirror_repo,
    pretrained_info,
)
from tsm.checkpoint.zoo import PUBLISHER_TITLES
from tsm.download import download, file_sha256
from tsm.hub.card import CardDetails
from tsm.hub.push import upload_repo_folder
from tsm.hub.save import RepoContents, write_repo_folder


@dataclass(frozen=True)
class MirroredModel:
    """One published model mirrored: its repo, where it went (a folder or a commit URL), its sha256."""

    name: str
    repo_id: str
    location: str
    sha256: str


def published_record(info: PretrainedInfo, sha256: str) -> PublishedRecord:
    """What a mirror's config records about the published file of ``info``."""
    return PublishedRecord(
        name=info.name,
        publisher=PUBLISHER_TITLES[info.source],
        url=info.url,
        filename=info.filename,
        sha256=sha256,
        license=info.license.spdx,
        license_source=info.license.stated_in,
        top1=info.top1,
        top1_measured_on=info.top1_measured_on,
        protocol=info.protocol,
        reported_in=info.reported_in,
    )


def mirrored_names(names: Sequence[str] = ()) -> list[PretrainedInfo]:
    """The models to mirror: ``names`` (each must be buildable), or every buildable published model."""
    if names:
        chosen = [pretrained_info(name) for name in names]
        for info in chosen:
            if not info.buildable:
                raise ValueError(f"{info.name} cannot be mirrored: {info.reason}")
        return chosen
    return [info for info in map(pretrained_info, list_pretrained()) if info.buildable]


def _write_mirror(info: PretrainedInfo, repo_id: str, folder: Path, staging: Path, progress: bool) -> str:
    """Write the mirror folder of ``info``; returns the published file's sha256."""
    original = download(info.url, info.filename, sha256_prefix=info.sha256_prefix, progress=progress)
    sha256 = file_sha256(original)
    conversion = convert_checkpoint(info.name, staging / "converted.safetensors")
    if conversion.max_abs_difference != 0:
        raise ValueError(
            f"{info.name}: the converted model's logits differ from the published file's by "
            f"{conversion.max_abs_difference:.3g}; not mirrored"
        )
    converted = conversion.info
    contents = RepoContents(
        class_names=tuple(converted.class_names or ()),
        data_config=converted.data_config,
        view_average=converted.view_average,
        card=CardDetails(repo_id, dataset=info.dataset),
        published=published_record(info, sha256),
        original_file=original,
    )
    write_repo_folder(folder, load_checkpoint(conversion.path)[0], contents)
    return sha256


def mirror_published(
    org: str,
    names: Sequence[str] = (),
    *,
    out: str | Path | None = None,
    private: bool = False,
    token: str | None = None,
    progress: bool = True,
) -> list[MirroredModel]:
    """Mirror published models (``names``, default all that tsm builds) as ``ORG/ARCHITECTURE.TAG``
    repos: pushed, one commit each, or with ``out`` written as folders ``out/ARCHITECTURE.TAG``."""
    chosen = mirrored_names(names)
    validate = huggingface_hub().utils.validate_repo_id
    mirrored = []
    for info in chosen:
        repo_id = mirror_repo(org, info).repo_id
        validate(repo_id)
        with tempfile.TemporaryDirectory(prefix="tsm-mirror-") as staging:
            folder = Path(out) / info.name if out is not None else Path(staging) / info.name
            sha256 = _write_mirror(info, repo_id, folder, Path(staging), progress)
            location = str(folder)
            if out is None:
                message = f"Mirror of {info.name}, published by {PUBLISHER_TITLES[info.source]} at {info.url}"
                location = upload_repo_folder(
                    folder, repo_id, private=private, token=token, commit_message=message
                )
        mirrored.append(MirroredModel(info.name, repo_id, location, sha256))
    return mirrored
