"""``tsm.push_to_hub``: what ``save_pretrained`` writes, uploaded to a Hub repo in one commit."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tsm.checkpoint import HUB_LIBRARY, HubError, huggingface_hub
from tsm.hub.save import save_pretrained
from tsm.models import Recognizer
from tsm.version import __version__


def upload_repo_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload every file of ``folder`` to the model repo ``repo_id`` (created when missing; the
    branch ``revision`` too) in one commit; returns the commit's URL."""
    hub = huggingface_hub()
    folder = Path(folder)
    operations = [
        hub.CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]
    api = hub.HfApi(token=token, library_name=HUB_LIBRARY, library_version=__version__)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.create_commit(
            repo_id,
            operations=operations,
            commit_message=commit_message or f"Upload {repo_id.rsplit('/', 1)[-1]} with tsm {__version__}",
            revision=revision,
        )
    except OSError as error:  # huggingface_hub's HTTP errors
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HubError(
            f"cannot push to {repo_id}: {detail}; log in with a token that may write to it "
            "(hf auth login, or HF_TOKEN)"
        ) from None
    return commit.commit_url


def push_to_hub(
    model_or_checkpoint: Recognizer | str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    **save_options: Any,
) -> str:
    """Write the repo folder of a model (:func:`tsm.save_pretrained`, with ``save_options``) and
    upload it to ``repo_id`` in one commit; returns the commit's URL. ``token``: default the
    logged-in one (``hf auth login``) or ``HF_TOKEN``."""
    huggingface_hub()  # a missing extra fails before any work
    with tempfile.TemporaryDirectory(prefix="tsm-hub-") as staging:
        folder = Path(staging) / repo_id.rsplit("/", 1)[-1]
        save_options.setdefault("repo_id", repo_id)
        save_pretrained(model_or_checkpoint, folder, **save_options)
        return upload_repo_folder(
            folder, repo_id, private=private, revision=revision, token=token, commit_message=commit_message
        )
