"""``hf-hub:ORG/NAME[@REVISION]``: a tsm model repo on the Hugging Face Hub, named wherever a
checkpoint is (as timm names its Hub models). :func:`resolve_hub_name` turns a name into the local
file of its weights, through ``huggingface_hub`` and its cache, so that ``HF_HUB_CACHE``,
``HF_HUB_OFFLINE``, ``HF_ENDPOINT`` and tokens (``hf auth login``, ``HF_TOKEN``) work as they do for
timm and transformers.

A repo's ``config.json`` is fetched and checked first, so that a repo that is not a tsm model, or
one written by a newer tsm, is refused before its weights are downloaded; the weights are then
fetched from the same commit. Every failure is one :class:`HubError` line naming the repo and, when
the cache is involved, the cache. ``huggingface_hub`` (``pip install 'tsm[hub]'``) is imported on
first use only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tsm.checkpoint.hub_config import HUB_CONFIG_FILE, HUB_LIBRARY, HUB_WEIGHTS_FILE, HubConfig, HubError
from tsm.models import ModelConfig
from tsm.version import __version__

HUB_PREFIX = "hf-hub:"


def huggingface_hub() -> ModuleType:
    """The ``huggingface_hub`` module, or a one-line error saying how to install it."""
    try:  # the submodules too: the package loads them lazily, as attributes they may be missing
        import huggingface_hub
        import huggingface_hub.constants
        import huggingface_hub.errors
        import huggingface_hub.utils
    except ImportError:
        raise HubError(
            "Hugging Face Hub models need the hub extra: pip install 'tsm[hub]' (huggingface_hub)"
        ) from None
    return huggingface_hub


@dataclass(frozen=True)
class HubName:
    """A repo on the Hub and, optionally, a revision (branch, tag or commit id)."""

    repo_id: str
    revision: str | None = None

    def at(self, revision: str) -> HubName:
        return HubName(self.repo_id, revision)

    def __str__(self) -> str:
        return f"{HUB_PREFIX}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


def is_hub_name(name: object) -> bool:
    """Whether ``name`` is an ``hf-hub:`` name rather than a file or a published model name."""
    return isinstance(name, str | Path) and str(name).startswith(HUB_PREFIX)


def parse_hub_name(name: str) -> HubName:
    """``hf-hub:ORG/NAME[@REVISION]`` as a :class:`HubName`; a malformed name is a one-line error."""
    text = str(name)
    if not text.startswith(HUB_PREFIX):
        raise ValueError(f"{text!r} is not an {HUB_PREFIX} name ({HUB_PREFIX}ORG/NAME[@REVISION])")
    repo_id, _, revision = text[len(HUB_PREFIX) :].partition("@")
    try:
        huggingface_hub().utils.validate_repo_id(repo_id)
        if repo_id.count("/") != 1:
            raise ValueError("it must be ORG/NAME")
    except ValueError as error:
        raise ValueError(
            f"{text!r} is not a valid {HUB_PREFIX}ORG/NAME[@REVISION] name: {str(error).splitlines()[0]}"
        ) from None
    return HubName(repo_id, revision or None)


def commit_of(cached_file: Path) -> str:
    """The commit a file of huggingface_hub's cache belongs to (``.../snapshots/<commit>/<path>``)."""
    for parent in cached_file.parents:
        if parent.parent.name == "snapshots":
            return parent.name
    raise HubError(f"{cached_file} is not in huggingface_hub's cache layout (snapshots/<commit>/...)")


def _silent_progress() -> type:
    from tqdm.auto import tqdm

    class Silent(tqdm):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **{**kwargs, "disable": True})

    return Silent


def download_hub_file(name: HubName, filename: str, *, progress: bool = True) -> Path:
    """The cached copy of ``filename`` of the repo ``name`` (downloaded by ``hf_hub_download`` into
    huggingface_hub's cache when missing or when the revision moved)."""
    hub = huggingface_hub()
    try:
        path = hub.hf_hub_download(
            name.repo_id,
            filename,
            revision=name.revision,
            library_name=HUB_LIBRARY,
            library_version=__version__,
            tqdm_class=None if progress else _silent_progress(),
        )
    except _transfer_errors(hub) as error:
        raise HubError(_explain(error, name, filename)) from None
    return Path(path)


def _transfer_errors(hub: ModuleType) -> tuple[type[BaseException], ...]:
    """What ``hf_hub_download`` raises for a missing repo, file or cache entry (OSErrors) and for a
    transfer that broke off (its HTTP client's errors)."""
    client = getattr(hub.utils, "httpx", None)
    return (OSError, client.HTTPError) if client is not None else (OSError,)


def _explain(error: BaseException, name: HubName, filename: str) -> str:
    """One line for an error of ``hf_hub_download``: what failed and what to do."""
    errors, constants = huggingface_hub().errors, huggingface_hub().constants
    cache = constants.HF_HUB_CACHE
    if isinstance(error, errors.LocalEntryNotFoundError):
        if constants.HF_HUB_OFFLINE:
            return (
                f"{filename} of {name} is not in the Hugging Face cache {cache}, and HF_HUB_OFFLINE is set: "
                "load the model once online, or point HF_HUB_CACHE at a cache that holds it"
            )
        return (
            f"cannot reach {constants.ENDPOINT} for {filename} of {name}, and it is not in the Hugging Face "
            f"cache {cache}: check the connection (and HF_ENDPOINT), or load it once online"
        )
    if isinstance(error, errors.GatedRepoError):
        return (
            f"{name} is gated: accept its conditions on its Hub page, then log in (hf auth login) or set "
            "HF_TOKEN"
        )
    if isinstance(error, errors.RepositoryNotFoundError):
        return (
            f"{name}: there is no model repo {name.repo_id} on {constants.ENDPOINT}, or it is private and no "
            "token with access to it was sent (hf auth login, or HF_TOKEN)"
        )
    if isinstance(error, errors.RevisionNotFoundError):
        return f"{name}: the repo {name.repo_id} has no revision {name.revision!r} (a branch, tag or commit)"
    if isinstance(error, errors.EntryNotFoundError):
        if filename == HUB_CONFIG_FILE:
            return (
                f"{name} is not a tsm model: the repo has no {HUB_CONFIG_FILE} (a tsm repo holds "
                f"{HUB_CONFIG_FILE} and {HUB_WEIGHTS_FILE}, as tsm.save_pretrained writes them)"
            )
        return f"{name}: the repo has no {filename}"
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"cannot fetch {filename} of {name}: {detail}"


def read_hub_config(name: str | HubName, *, progress: bool = True) -> tuple[HubConfig, Path]:
    """The checked ``config.json`` of a repo and its cached file (no weights are downloaded)."""
    hub = name if isinstance(name, HubName) else parse_hub_name(name)
    path = download_hub_file(hub, HUB_CONFIG_FILE, progress=progress)
    return HubConfig.read(path, str(hub)), path


def resolve_hub_name(name: str, *, progress: bool = True) -> Path:
    """The local file of the weights ``hf-hub:ORG/NAME[@REVISION]`` stands for: its config is
    fetched and checked, then its ``model.safetensors`` from the same commit (each cached once)."""
    hub = parse_hub_name(name)
    _, config_file = read_hub_config(hub, progress=progress)
    return download_hub_file(hub.at(commit_of(config_file)), HUB_WEIGHTS_FILE, progress=progress)


def hub_model_config(name: str) -> ModelConfig:
    """The network of a repo, from its ``config.json`` alone (``create_model(name)`` without weights)."""
    return read_hub_config(name)[0].model_config
