"""tsm models on the Hugging Face Hub, the publishing side (loading ``hf-hub:`` names is the
checkpoint layer's: :mod:`tsm.checkpoint.hub_names`). One job a module: ``card`` (the model card),
``exports`` (the exports a repo may carry, one row each), ``save`` (``save_pretrained``: the repo
folder), ``push`` (``push_to_hub``: one commit), ``mirror`` (the published zoo as Hub repos).
Needs ``pip install 'tsm[hub]'``."""

from tsm.hub.card import CardDetails, TestMetrics, card_body, card_metadata, write_model_card
from tsm.hub.exports import ExportSettings, HubExport, hub_exports
from tsm.hub.mirror import MirroredModel, mirror_published, published_record
from tsm.hub.push import push_to_hub, upload_repo_folder
from tsm.hub.save import RepoContents, describe_model, save_pretrained, write_repo_folder

__all__ = [
    "CardDetails",
    "ExportSettings",
    "HubExport",
    "MirroredModel",
    "RepoContents",
    "TestMetrics",
    "card_body",
    "card_metadata",
    "describe_model",
    "hub_exports",
    "mirror_published",
    "published_record",
    "push_to_hub",
    "save_pretrained",
    "upload_repo_folder",
    "write_model_card",
    "write_repo_folder",
]
