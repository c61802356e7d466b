"""The naming conventions of the reference and of MMAction2, read back from generated names."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tsm.checkpoint.foreign.hints import FileHints, mmaction2_hints, reference_name_hints

ARCHS = {"resnet50": "resnet50", "resnet101": "resnet101", "mobilenetv2": "mobilenet_v2"}
# The datasets' words in the publishers' file names, as the dataset catalog reads them.
DATASET_WORDS = {
    "kinetics": "kinetics400",
    "kinetics400": "kinetics400",
    "something": "sthv1",
    "somethingv2": "sthv2",
    "sthv2": "sthv2",
    "jester": "jester",
    "ucf101": "ucf101",
    "hmdb51": "hmdb51",
}


def _values(hints: FileHints) -> dict:
    """The model settings and the other facts of ``hints``, as plain values."""
    values = {key: setting.value for key, setting in hints.settings.items()}
    facts = {"dataset": hints.dataset, "modality": hints.modality, "dense": hints.dense}
    return values | {key: fact.value for key, fact in facts.items() if fact is not None}


@given(
    dataset=st.sampled_from(["kinetics", "something", "somethingv2", "jester", "ucf101", "hmdb51"]),
    arch=st.sampled_from(sorted(ARCHS)),
    shift=st.one_of(st.none(), st.tuples(st.integers(1, 64), st.sampled_from(["blockres", "block"]))),
    tpool=st.booleans(),
    segments=st.integers(1, 64),
    epochs=st.integers(1, 200),
    dense=st.booleans(),
    layout=st.sampled_from(["{}.pth", "{}/ckpt.pth.tar", "{}/ckpt.best.pth.tar"]),
)
def test_reference_names(dataset, arch, shift, tpool, segments, epochs, dense, layout):
    """main.py's store_name: TSM_<dataset>_RGB_<arch>[_shift<div>_<place>][_tpool]_avg_segment<T>_e<E>."""
    full_arch = arch + (f"_shift{shift[0]}_{shift[1]}" if shift else "") + ("_tpool" if tpool else "")
    name = f"TSM_{dataset}_RGB_{full_arch}_avg_segment{segments}_e{epochs}" + ("_dense" if dense else "")
    hints = reference_name_hints(Path("/checkpoints") / layout.format(name))
    values = _values(hints)
    assert values["dataset"] == DATASET_WORDS[dataset] and values["modality"] == "RGB"
    assert values["backbone"] == ARCHS[arch]
    assert values["num_segments"] == segments
    assert values["shift"] == bool(shift) and values["temporal_pool"] == tpool and values["dense"] == dense
    if shift:
        assert (values["fold_div"], values["place"]) == shift
    else:
        assert "fold_div" not in values and "place" not in values
    assert name in hints.settings["num_segments"].source


def test_names_outside_the_conventions_say_nothing():
    assert reference_name_hints("/runs/exp3/ckpt.pth.tar") == FileHints()
    assert reference_name_hints("model_final.pth") == FileHints()
    assert set(_values(mmaction2_hints("epoch_50.pth", {}))) == {"dense"}


@given(
    backbone=st.sampled_from(["r50", "r101", "mobilenetv2"]),
    segments=st.integers(1, 64),
    dense=st.booleans(),
    dataset=st.sampled_from(["kinetics400", "sthv2", "ucf101"]),
)
def test_mmaction2_names(backbone, segments, dense, dataset):
    """tsm_imagenet-pretrained-<backbone>_8xb16-[dense-]1x1x<T>-50e_<dataset>-rgb_<date>-<hash>.pth"""
    sampling = ("dense-" if dense else "") + f"1x1x{segments}"
    name = f"tsm_imagenet-pretrained-{backbone}_8xb16-{sampling}-50e_{dataset}-rgb_20220831-64d69186.pth"
    values = _values(mmaction2_hints(name, {}))
    expected_backbone = {"r50": "resnet50", "r101": "resnet101", "mobilenetv2": "mobilenet_v2"}[backbone]
    assert values == {
        "num_segments": segments,
        "backbone": expected_backbone,
        "dense": dense,
        "dataset": DATASET_WORDS[dataset],
    }


def test_mmaction2_config_text_wins_over_the_name():
    name = "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb.pth"
    text = "model = dict(backbone=dict(type='ResNetTSM', num_segments=16, shift_div=4))"
    settings = mmaction2_hints(name, {"meta": {"cfg": text}}).settings
    assert (settings["num_segments"].value, settings["fold_div"].value) == (16, 4)
    assert settings["num_segments"].source.startswith("checkpoint config")
    defaults = mmaction2_hints(
        name, {"meta": {"config": "backbone=dict(type='ResNetTSM', depth=50)"}}
    ).settings
    assert (defaults["num_segments"].value, defaults["fold_div"].value) == (8, 8)  # MMAction2's defaults
    assert "default" in defaults["fold_div"].source
