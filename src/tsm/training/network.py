"""What :class:`~tsm.training.RecognizerModule` trains, given one way: ``model`` says which network
(a :class:`ModelName`, a :class:`~tsm.ModelConfig`, or a built :class:`~tsm.Recognizer` injected as
in Lightning's examples) and ``init`` (a :class:`ModelInit`) where its weights start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from jsonargparse.typing import register_type

from tsm.checkpoint import create_model, init_from_checkpoint, load_checkpoint, model_config_of
from tsm.models import ModelConfig, Recognizer, as_model_config

LINKED_SETTINGS = ("num_classes", "num_segments")  # the data's, never the network's own


class ModelName(str):
    """A model name: an architecture of :func:`tsm.list_models`, or a published ``ARCHITECTURE.TAG``
    (its network, untrained).

    On the command line (LightningCLI, through jsonargparse) a name reads as that network's settings,
    so that ``--model.model NAME --model.model.dropout 0`` changes that network, not the defaults.
    """


def _settings_of_name(name: object) -> dict[str, Any]:
    """What the command line stores for ``--model.model NAME``: the network's settings, but the
    classes and frames, which come from the data."""
    if not isinstance(name, str):
        raise TypeError(f"a model name is a string, not {type(name).__name__}")
    settings = model_config_of(name).to_dict()
    return {key: value for key, value in settings.items() if key not in LINKED_SETTINGS}


def _name_as_text(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a model name is a string, not {type(name).__name__}")  # settings: a ModelConfig
    return str(name)


register_type(ModelName, serializer=_name_as_text, deserializer=_settings_of_name)


@dataclass(frozen=True)
class ModelInit:
    """Where the network's weights start: at most one source; none leaves them random.

    Attributes:
        backbone_weights: the backbone alone, for a network built here: ``"imagenet"``, a
            torchvision weights name or a state-dict file (training on video from ImageNet).
        finetune_from: a trained model (a tsm, reference or MMAction2 file, or a published name)
            whose weights start ``model``'s network, all but a classifier of another size
            (fine-tuning, e.g. Kinetics -> UCF101).
        checkpoint: a trained model (file or published name) that is the network: its
            architecture, weights and class names (``model`` is not used; its classes must be the
            data's). ``tsm test`` / ``tsm validate`` also take its frames per clip and test pipeline.
    """

    backbone_weights: str | None = None
    finetune_from: str | None = None
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        given = [field.name for field in fields(self) if getattr(self, field.name)]
        if len(given) > 1:
            raise ValueError(
                f"model init: give one of backbone_weights, finetune_from and checkpoint, not "
                f"{' and '.join(given)} (each sets the weights the other would)"
            )


RANDOM_INIT = ModelInit()


class Network(NamedTuple):
    """The network to train, its title in reports, and its class names when it brings some."""

    recognizer: Recognizer
    title: str
    class_names: list[str] | None


def build_network(
    model: str | ModelConfig | Recognizer | Mapping[str, Any],
    init: ModelInit,
    num_classes: int,
    num_segments: int,
    class_names: list[str] | None = None,
) -> Network:
    """The network ``model`` and ``init`` describe, for data of ``num_classes`` classes (named
    ``class_names``, when known) and ``num_segments`` frames per clip."""
    if init.checkpoint:
        if isinstance(model, Recognizer):
            raise ValueError("init.checkpoint is the network: pass no built network as model with it")
        return _trained_network(init.checkpoint, num_classes, num_segments, class_names)
    if isinstance(model, Recognizer):
        if (model.num_classes, model.num_segments) != (num_classes, num_segments):
            raise ValueError(
                f"the network predicts {model.num_classes} classes from {model.num_segments}-frame clips but "
                f"the data has {num_classes} classes and {num_segments} frames per clip"
            )
        if init.backbone_weights:
            raise ValueError("init.backbone_weights initialises a network built here; the given one is built")
        network = Network(model, type(model).__name__, class_names)
    elif isinstance(model, ModelConfig | Mapping):
        config = as_model_config(model, num_classes=num_classes, num_segments=num_segments)
        recognizer = Recognizer(config, backbone_weights=init.backbone_weights)
        network = Network(recognizer, config.backbone, class_names)
    else:
        recognizer = create_model(
            model, backbone_weights=init.backbone_weights, num_classes=num_classes, num_segments=num_segments
        )
        network = Network(recognizer, str(model), class_names)
    if init.finetune_from:
        init_from_checkpoint(network.recognizer, init.finetune_from)
    return network


def _trained_network(
    checkpoint: str, num_classes: int, num_segments: int, class_names: list[str] | None
) -> Network:
    """The network of a trained model file, checked against the data's classes."""
    model, info = load_checkpoint(checkpoint, num_segments=num_segments)
    if model.num_classes != num_classes:
        raise ValueError(
            f"{checkpoint} predicts {model.num_classes} classes but the data has {num_classes}; "
            "test on the checkpoint's classes, or fine-tune with model.init.finetune_from"
        )
    numbered = [str(i) for i in range(num_classes)]  # a list file without class names
    if info.class_names and class_names not in (None, numbered, info.class_names):
        raise ValueError(
            f"{checkpoint} was trained on the classes {info.class_names} but the data has "
            f"{class_names}: a label would mean another class; give the data the checkpoint's "
            "class list (data.classes) or the same class folders"
        )
    return Network(model, Path(checkpoint).name, info.class_names or class_names)
