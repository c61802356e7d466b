"""``TSM_HUB_MIRROR=ORG``: published checkpoints fetched from mirror repos on the Hugging Face Hub
(``ORG/ARCHITECTURE.TAG``, as ``tsm hub mirror`` writes them) before their publishers' hosts, whose
links have broken before. The mirror's copy of the published file is verified like a download from
the publisher: against the sha256 prefix the zoo knows (MMAction2's files), and against the sha256
the mirror recorded when it was made. A mirror without the model, or out of reach, falls back to
the publisher with a warning; a file that fails the check is an error."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from tsm.checkpoint.hub_config import HUB_CONFIG_FILE, HubConfig, HubError, PublishedRecord
from tsm.checkpoint.hub_names import HubName, commit_of, download_hub_file
from tsm.checkpoint.pretrained import PretrainedInfo
from tsm.download import DownloadError, file_sha256

HUB_MIRROR_VARIABLE = "TSM_HUB_MIRROR"


def hub_mirror_org() -> str | None:
    """The Hub user or organisation ``TSM_HUB_MIRROR`` names, or None when it is unset."""
    return os.environ.get(HUB_MIRROR_VARIABLE, "").strip() or None


def mirror_repo(org: str, info: PretrainedInfo) -> HubName:
    """The mirror repo of a published model: ``ORG/ARCHITECTURE.TAG`` (timm's naming)."""
    return HubName(f"{org}/{info.name}")


def _record_of(config: HubConfig, info: PretrainedInfo, repo: HubName) -> PublishedRecord:
    record = config.published
    if record is None or record.name != info.name or record.filename != info.filename:
        raise HubError(
            f"{repo} is not a mirror of {info.name} ({info.filename}): its {HUB_CONFIG_FILE} says otherwise"
        )
    return record


def verify_published_file(path: Path, info: PretrainedInfo, recorded_sha256: str | None, origin: str) -> None:
    """Refuse a file that is not the published one: its sha256 must start with the zoo's prefix
    (where the publisher's file name carries one) and equal ``recorded_sha256`` (when given)."""
    digest = file_sha256(path)
    expected = [("the published file name says it starts with", info.sha256_prefix)]
    expected.append(("the mirror recorded", recorded_sha256))
    for what, value in expected:
        if value is not None and not digest.startswith(value.lower()):
            raise DownloadError(
                f"{info.filename} from {origin} has sha256 {digest}, but {what} {value}: it is not the "
                f"published file; remove it from the cache and try again, or unset {HUB_MIRROR_VARIABLE}"
            )


def file_from_hub_mirror(info: PretrainedInfo, *, progress: bool = True) -> Path | None:
    """The published file of ``info`` from the ``TSM_HUB_MIRROR`` org (verified, in huggingface_hub's
    cache), or None when the variable is unset or the mirror cannot serve it (then a warning says why)."""
    org = hub_mirror_org()
    if org is None:
        return None
    repo = mirror_repo(org, info)
    try:
        config_file = download_hub_file(repo, HUB_CONFIG_FILE, progress=progress)
        record = _record_of(HubConfig.read(config_file, str(repo)), info, repo)
        path = download_hub_file(repo.at(commit_of(config_file)), record.path_in_repo, progress=progress)
    except HubError as error:
        warnings.warn(
            f"{HUB_MIRROR_VARIABLE}={org}: {error}; fetching {info.name} from its publisher instead",
            stacklevel=2,
        )
        return None
    verify_published_file(path, info, record.sha256, str(repo))
    return path
