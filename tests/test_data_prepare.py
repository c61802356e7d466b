"""``tsm data prepare``: each dataset's official annotation files (with their quirks) and real
encoded videos in, list files out, compared line by line with an independent expectation; the
shipped class orders of the published checkpoints; list lines with spaces."""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tsm.cli.main import main
from tsm.data import (
    AnnotationError,
    VideoDataset,
    dataset_class_names,
    format_list_line,
    prepare_dataset,
    probe,
    read_list_file,
    write_video,
)

EXPECTED_SIZES = {
    "kinetics400": 400,
    "kinetics600": 600,
    "kinetics700": 700,
    "sthv1": 174,
    "sthv2": 174,
    "jester": 27,
    "ucf101": 101,
    "hmdb51": 51,
}


@functools.cache
def _encoded(suffix: str) -> bytes:
    """Bytes of one tiny real video (6 frames, 32x32): mp4 (H.264) or avi (MPEG-4, as UCF101)."""
    folder = Path(tempfile.mkdtemp(prefix="tsm-prepare-"))
    frames = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    codec = "mpeg4" if suffix == ".avi" else "libx264"
    return write_video(folder / f"clip{suffix}", frames, codec=codec).read_bytes()


def _video(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_encoded(".avi" if path.suffix == ".avi" else ".mp4"))
    return path


def _frame_folder(path: Path, count: int, template: str = "{:05d}.jpg") -> Path:
    path.mkdir(parents=True)
    for number in range(1, count + 1):
        Image.new("RGB", (8, 8), (number * 20, 0, 0)).save(path / template.format(number))
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _expected(out: Path, entries: list[tuple[Path, int]] | list[tuple[Path, int, int]]) -> list[str]:
    return [" ".join([os.path.relpath(entry[0], out), *map(str, entry[1:])]) for entry in entries]


# Class names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", list(EXPECTED_SIZES))
def test_shipped_class_names_are_complete_and_unique(dataset: str) -> None:
    for order in ("reference", "mmaction2"):
        names = dataset_class_names(dataset, order)
        assert len(names) == len(set(names)) == EXPECTED_SIZES[dataset]
        assert all(name == name.strip() and name for name in names)


def test_class_orders_of_the_publishers() -> None:
    jester_ref, jester_mm = dataset_class_names("jester"), dataset_class_names("jester", "mmaction2")
    assert (jester_ref[0], jester_ref[1], jester_mm[0], jester_mm[24]) == (
        "Doing other things",
        "Drumming Fingers",
        "Swiping Left",
        "Drumming Fingers",
    )
    v1_ref, v1_mm = dataset_class_names("sthv1"), dataset_class_names("sthv1", "mmaction2")
    assert v1_ref[0] == "Approaching something with your camera" and v1_mm[0] == "Holding something"
    assert sorted(v1_mm) == v1_ref != v1_mm
    k400 = dataset_class_names("kinetics400")
    assert k400.index("skiing (not slalom or crosscountry)") + 1 == k400.index("skiing crosscountry") == 309
    assert (k400[0], k400[1], k400[399]) == ("abseiling", "air drumming", "zumba")
    ucf = dataset_class_names("ucf101")
    assert ucf[34:38] == ["Hammering", "HammerThrow", "HandstandPushups", "HandstandWalking"]
    assert ucf[46:48] == ["JumpingJack", "JumpRope"] and (ucf[0], ucf[100]) == ("ApplyEyeMakeup", "YoYo")
    hmdb = dataset_class_names("hmdb51")
    assert (hmdb[0], hmdb[1], hmdb[50]) == ("brush_hair", "cartwheel", "wave")
    for dataset in ("kinetics400", "kinetics600", "kinetics700", "sthv2", "ucf101", "hmdb51"):
        assert dataset_class_names(dataset) == dataset_class_names(dataset, "mmaction2")


# The reference's Jester model's classes in label order (mit-han-lab/temporal-shift-module,
# online_demo/main.py), written out here as an independent check of the sorted order.
REFERENCE_JESTER = [
    "Doing other things", "Drumming Fingers", "No gesture", "Pulling Hand In", "Pulling Two Fingers In",
    "Pushing Hand Away", "Pushing Two Fingers Away", "Rolling Hand Backward", "Rolling Hand Forward",
    "Shaking Hand", "Sliding Two Fingers Down", "Sliding Two Fingers Left", "Sliding Two Fingers Right",
    "Sliding Two Fingers Up", "Stop Sign", "Swiping Down", "Swiping Left", "Swiping Right", "Swiping Up",
    "Thumb Down", "Thumb Up", "Turning Hand Clockwise", "Turning Hand Counterclockwise",
    "Zooming In With Full Hand", "Zooming In With Two Fingers", "Zooming Out With Full Hand",
    "Zooming Out With Two Fingers",
]  # fmt: skip


def test_reference_jester_order_matches_the_reference_demo() -> None:
    assert dataset_class_names("jester") == REFERENCE_JESTER


def test_class_names_errors() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'kinetics'"):
        dataset_class_names("kinetics")
    with pytest.raises(ValueError, match="unknown class order 'torchvision'"):
        dataset_class_names("jester", "torchvision")  # type: ignore[arg-type]


# List lines --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "num_frames"),
    [("air drumming/a b.mp4", None), ("x  y/12 3.mp4", None), ("dir 7 with 3 spaces", 5), ("v 1.avi", None)],
)
def test_list_lines_round_trip_paths_with_spaces(tmp_path: Path, path: str, num_frames: int | None) -> None:
    (tmp_path / "list.txt").write_text(format_list_line(path, 4, num_frames))
    records, layout = read_list_file(tmp_path / "list.txt")
    assert (records[0].path, records[0].num_frames, records[0].label) == (str(tmp_path / path), num_frames, 4)
    assert layout == ("video_list" if num_frames is None else "frame_list")


@pytest.mark.parametrize("path", ["clip 5", "a\nb.mp4", " lead.mp4", "trail.mp4 "])
def test_list_lines_refuse_paths_that_cannot_round_trip(path: str) -> None:
    with pytest.raises(ValueError, match="cannot be written to a list file"):
        format_list_line(path, 1)


def test_list_reader_keeps_its_layouts_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x.mp4 3\n# comment\n\n/abs/y.mp4 1\n")
    records, layout = read_list_file(tmp_path / "a.txt", root="/data")
    assert [r.path for r in records] == ["/data/x.mp4", "/abs/y.mp4"] and layout == "video_list"
    (tmp_path / "b.txt").write_text("x.mp4 label\n")
    with pytest.raises(ValueError, match=r"b.txt:1: cannot parse 'x.mp4 label'"):
        read_list_file(tmp_path / "b.txt")
    (tmp_path / "c.txt").write_text("x.mp4 3\nd 4 1\n")
    with pytest.raises(ValueError, match="mixes"):
        read_list_file(tmp_path / "c.txt")


# Kinetics ----------------------------------------------------------------------------------------


def _kinetics(tmp_path: Path, mmaction_names: bool) -> tuple[Path, Path]:
    annotations, videos = tmp_path / "annotations", tmp_path / "videos"
    annotations.mkdir()
    train, val, test = (
        ("kinetics_train.csv", "kinetics_val.csv", "kinetics_test.csv")
        if mmaction_names
        else ("train.csv", "validate.csv", "test.csv")
    )
    (annotations / train).write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        "abseiling,0wR5jVB-WPk,417,427,train,0\n"
        '"air drumming",-abc_DEF12,5,15,train,0\n'
        '"skiing (not slalom or crosscountry)",sk1,0,10,train,0\n'
        "skiing crosscountry,sk2,3,13,train,0\n"
        "zumba,gone,1,11,train,0\n"
        "abseiling,0wR5jVB-WPk,417,427,train,0\n"
        "flying kites badly,xx,1,2,train,0\n"
        "abseiling,yy,soon,3,train,0\n"
    )
    (annotations / val).write_text("label,youtube_id,time_start,time_end,split\nzumba,zz9,30,40,validate\n")
    (annotations / test).write_text("youtube_id,time_start,time_end,split\ntt1,0,10,test\n")
    _video(videos / "abseiling" / "0wR5jVB-WPk_000417_000427.mp4")
    _video(videos / "air drumming" / "-abc_DEF12_000005_000015.mp4")
    _video(videos / "deep" / "er" / "sk1_000000_000010.mkv")
    _video(videos / "sk2_000003_000013.webm")
    _video(videos / "zumba" / "zz9_000030_000040.mp4")
    _video(videos / "tt1_000000_000010.mp4")
    return annotations, videos


@pytest.mark.parametrize("mmaction_names", [False, True])
def test_prepare_kinetics(tmp_path: Path, mmaction_names: bool) -> None:
    annotations, videos = _kinetics(tmp_path, mmaction_names)
    out = tmp_path / "lists"
    result = prepare_dataset("kinetics400", annotations, videos, out)
    assert _lines(out / "train.txt") == _expected(
        out,
        [
            (videos / "abseiling" / "0wR5jVB-WPk_000417_000427.mp4", 0),
            (videos / "air drumming" / "-abc_DEF12_000005_000015.mp4", 1),
            (videos / "deep" / "er" / "sk1_000000_000010.mkv", 308),
            (videos / "sk2_000003_000013.webm", 309),
        ],
    )
    assert _lines(out / "val.txt") == _expected(out, [(videos / "zumba" / "zz9_000030_000040.mp4", 399)])
    assert not (out / "test.txt").exists()  # the test CSV has no labels
    assert _lines(out / "missing.txt") == ["train gone_000001_000011"]
    assert _lines(out / "classes.txt") == dataset_class_names("kinetics400")
    train_csv = annotations / ("kinetics_train.csv" if mmaction_names else "train.csv")
    problems = _lines(out / "problems.txt")
    assert problems == [
        f"{train_csv}:8: unknown label 'flying kites badly'",
        f"{train_csv}:9: malformed row ['abseiling', 'yy', 'soon', '3', 'train', '0']",
        f"{train_csv}:7: duplicate id '0wR5jVB-WPk_000417_000427' (first at {train_csv}:2)",
    ]
    assert result.counts == {"train": 4, "val": 1} and result.problems == problems
    assert result.classes_used == [dataset_class_names("kinetics400")[i] for i in (0, 1, 308, 309, 399)]
    assert result.summary().splitlines()[:3] == [
        f"{out}: train 4, val 1 samples, 5 of the 400 classes",
        "  labels keep their published indices (0-399, classes.txt)",
        "  1 annotated samples have no file (missing.txt), e.g. gone_000001_000011",
    ]


def test_prepared_lists_load_from_another_working_directory(tmp_path: Path, monkeypatch) -> None:
    annotations, videos = _kinetics(tmp_path, mmaction_names=False)
    prepare_dataset("kinetics400", annotations, videos, tmp_path / "lists")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    records, layout = read_list_file(tmp_path / "lists" / "train.txt")
    assert layout == "video_list" and [probe(r.path).num_frames for r in records] == [6, 6, 6, 6]
    dataset = VideoDataset(
        tmp_path / "lists" / "train.txt",
        train=False,
        data_config={"num_segments": 2, "resize": 32, "input_size": 32},
    )
    assert len(dataset.class_names) == 400 and dataset[1][1] == 1 and dataset[1][0].shape == (1, 2, 3, 32, 32)


def test_prepare_kinetics_with_test_labels_and_mmaction2_order(tmp_path: Path) -> None:
    annotations, videos = _kinetics(tmp_path, mmaction_names=False)
    (annotations / "test.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nabseiling,tt1,0,10,test\n"
    )
    out = tmp_path / "lists"
    prepare_dataset("kinetics400", annotations, videos, out, class_order="mmaction2")
    assert _lines(out / "test.txt") == _expected(out, [(videos / "tt1_000000_000010.mp4", 0)])


# Something-Something V2 --------------------------------------------------------------------------


def test_prepare_sthv2(tmp_path: Path) -> None:
    annotations, videos, out = tmp_path / "annotations", tmp_path / "videos", tmp_path / "out"
    annotations.mkdir()
    names = dataset_class_names("sthv2", "mmaction2")
    label_map = {name: str(index) for index, name in enumerate(names)}
    (annotations / "something-something-v2-labels.json").write_text(json.dumps(label_map, indent=1))
    train = [
        {
            "id": "78687",
            "label": "holding potato next to vicks",
            "template": "Holding [something] next to [something]",
            "placeholders": ["potato", "vicks"],
        },
        {
            "id": "42326",
            "label": "a feather falling",
            "template": "[Something] falling like a feather or paper",
            "placeholders": ["a feather"],
        },
        {"id": "100", "label": "gone", "template": "Putting [something] on a surface", "placeholders": ["x"]},
        {"id": "7", "template": "Dancing with [something]"},
        {"label": "no id"},
    ]
    validation = [
        {"id": "5", "label": "x", "template": "Putting [something] on a surface", "placeholders": []}
    ]
    (annotations / "something-something-v2-train.json").write_text(json.dumps(train))
    (annotations / "something-something-v2-validation.json").write_text(json.dumps(validation))
    (annotations / "something-something-v2-test.json").write_text(json.dumps([{"id": "1420"}]))
    for sample_id in ("78687", "42326", "5", "1420"):
        _video(videos / f"{sample_id}.webm")
    result = prepare_dataset("sthv2", annotations, videos, out)
    train_json = annotations / "something-something-v2-train.json"
    assert _lines(out / "train.txt") == _expected(
        out,
        [
            (videos / "78687.webm", int(label_map["Holding something next to something"])),
            (videos / "42326.webm", int(label_map["Something falling like a feather or paper"])),
        ],
    )
    assert _lines(out / "val.txt") == _expected(
        out, [(videos / "5.webm", int(label_map["Putting something on a surface"]))]
    )
    assert not (out / "test.txt").exists() and _lines(out / "missing.txt") == ["train 100"]
    assert result.problems == [
        f"{train_json}: item 3: unknown template 'Dancing with [something]'",
        f"{train_json}: item 4: malformed entry (needs 'id' and 'template')",
    ]
    assert result.classes_used == names and result.left_out == 0


def test_prepare_sthv2_with_a_subset_of_the_classes(tmp_path: Path) -> None:
    """A labels json of three classes, numbered 0-2: the samples keep their published labels."""
    annotations, videos, out = tmp_path / "annotations", tmp_path / "videos", tmp_path / "out"
    annotations.mkdir()
    names = dataset_class_names("sthv2")
    chosen = [
        "Throwing something",
        "Holding something next to something",
        "Pushing something from left to right",
    ]
    labels_json = annotations / "something-something-v2-labels.json"
    labels_json.write_text(json.dumps({name: str(index) for index, name in enumerate(chosen)}))
    train = [
        {"id": "1", "template": "Throwing [something]"},
        {"id": "2", "template": "Holding [something] next to [something]"},
        {"id": "3", "template": "Putting [something] on a surface"},  # a class left out of the json
        {"id": "4", "template": "Dancing with [something]"},  # no such class
    ]
    validation = [{"id": "5", "template": "Pushing [something] from left to right"}]
    (annotations / "something-something-v2-train.json").write_text(json.dumps(train))
    (annotations / "something-something-v2-validation.json").write_text(json.dumps(validation))
    for sample_id in "12345":
        _video(videos / f"{sample_id}.webm")
    result = prepare_dataset("sthv2", annotations, videos, out)
    assert _lines(out / "train.txt") == _expected(
        out, [(videos / "1.webm", names.index(chosen[0])), (videos / "2.webm", names.index(chosen[1]))]
    )
    assert _lines(out / "val.txt") == _expected(out, [(videos / "5.webm", names.index(chosen[2]))])
    assert _lines(out / "classes.txt") == names  # all 174: label i is class i of the published models
    assert result.classes_used == sorted(chosen, key=names.index) and result.left_out == 1
    train_json = annotations / "something-something-v2-train.json"
    assert result.problems == [f"{train_json}: item 3: unknown template 'Dancing with [something]'"]
    assert result.summary().splitlines()[:3] == [
        f"{out}: train 2, val 1 samples, 3 of the 174 classes",
        "  labels keep their published indices (0-173, classes.txt)",
        "  1 annotated samples of the other classes left out",
    ]
    labels_json.write_text(json.dumps({"Throwing something": "0", "Juggling [something]": "1"}))
    with pytest.raises(AnnotationError) as refused:
        prepare_dataset("sthv2", annotations, videos, out)
    message = str(refused.value)
    assert message.startswith(f"{labels_json}: 1 of its 2 class names are not classes of the dataset")
    assert "'Juggling [something]'" in message and "\n" not in message


# Something-Something V1 and Jester (frame folders) -----------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "prefix"), [("sthv1", "something-something-v1"), ("jester", "jester-v1")]
)
@pytest.mark.parametrize("order", ["reference", "mmaction2"])
def test_prepare_frame_datasets(tmp_path: Path, dataset: str, prefix: str, order: str) -> None:
    annotations, frames, out = tmp_path / "annotations", tmp_path / "20bn-frames", tmp_path / "out"
    annotations.mkdir()
    file_order = dataset_class_names(dataset, "mmaction2")  # the labels file as distributed
    (annotations / f"{prefix}-labels.csv").write_text("\n".join(file_order) + "\n")
    first, last = file_order[0], file_order[-1]
    (annotations / f"{prefix}-train.csv").write_text(
        f"100218;{first}\n34870;{last}\n555;{first}\nbroken line\n"
    )
    (annotations / f"{prefix}-validation.csv").write_text(f"9;{last}\r\n10;Not a class\r\n")
    (annotations / f"{prefix}-test.csv").write_text("77\n")
    _frame_folder(frames / "100218", 3)
    _frame_folder(frames / "34870", 5)
    _frame_folder(frames / "9", 2)
    (frames / "555").mkdir()  # an empty folder counts as missing
    result = prepare_dataset(dataset, annotations, frames, out, class_order=order)
    expected_order = sorted(file_order) if order == "reference" else file_order
    assert _lines(out / "classes.txt") == expected_order
    label = {first: expected_order.index(first), last: expected_order.index(last)}
    assert _lines(out / "train.txt") == _expected(
        out, [(frames / "100218", 3, label[first]), (frames / "34870", 5, label[last])]
    )
    assert _lines(out / "val.txt") == _expected(out, [(frames / "9", 2, label[last])])
    assert _lines(out / "missing.txt") == ["train 555"]
    train_csv, val_csv = annotations / f"{prefix}-train.csv", annotations / f"{prefix}-validation.csv"
    assert result.problems[:2] == [
        f"{train_csv}:4: malformed row 'broken line' (expected 'id;label')",
        f"{val_csv}:2: unknown label 'Not a class'",
    ]
    records, layout = read_list_file(out / "train.txt")
    assert layout == "frame_list" and records[1].num_frames == 5


def test_jester_reference_labels_are_facts(tmp_path: Path) -> None:
    annotations, frames, out = tmp_path / "a", tmp_path / "f", tmp_path / "o"
    annotations.mkdir()
    (annotations / "jester-v1-labels.csv").write_text("\n".join(dataset_class_names("jester", "mmaction2")))
    (annotations / "jester-v1-train.csv").write_text(
        "1;Doing other things\n2;Swiping Left\n3;Drumming Fingers\n"
    )
    (annotations / "jester-v1-validation.csv").write_text("")
    for sample_id in "123":
        _frame_folder(frames / sample_id, 1)
    prepare_dataset("jester", annotations, frames, out)
    assert [line.split()[-1] for line in _lines(out / "train.txt")] == ["0", "16", "1"]
    prepare_dataset("jester", annotations, frames, out, class_order="mmaction2")
    assert [line.split()[-1] for line in _lines(out / "train.txt")] == ["26", "0", "24"]


# UCF101 ------------------------------------------------------------------------------------------


_UCF101_ROW_PROBLEM = "malformed row, unknown class or classInd.txt number of another class"


def test_prepare_ucf101(tmp_path: Path) -> None:
    annotations, videos, out = tmp_path / "ucfTrainTestlist", tmp_path / "UCF-101", tmp_path / "out"
    annotations.mkdir()
    names = dataset_class_names("ucf101")
    (annotations / "classInd.txt").write_bytes(
        "".join(f"{number} {name}\r\n" for number, name in enumerate(names, 1)).encode()
    )
    (annotations / "trainlist01.txt").write_bytes(
        b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
        b"HandstandPushups/v_HandStandPushups_g08_c01.avi 37\r\n"
        b"Hammering/v_Hammering_g09_c02.avi 35\r\n"
        b"HammerThrow/v_HammerThrow_g09_c01.avi 36\r\n"
        b"JumpRope/v_JumpRope_g10_c01.avi 48\r\n"
        b"JumpingJack/v_JumpingJack_g10_c01.avi 47\r\n"
        b"YoYo/v_YoYo_g25_c05.avi 102\r\n"
    )
    (annotations / "testlist01.txt").write_bytes(
        b"HandstandPushups/v_HandStandPushups_g01_c02.avi\r\nYoYo/v_YoYo_g01_c01.avi\r\n"
    )
    for relative in (
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        "HandstandPushups/v_HandstandPushups_g08_c01.avi",
        "HandstandPushups/v_HandstandPushups_g01_c02.avi",
        "Hammering/v_Hammering_g09_c02.avi",
        "HammerThrow/v_HammerThrow_g09_c01.avi",
        "JumpRope/v_JumpRope_g10_c01.avi",
        "JumpingJack/v_JumpingJack_g10_c01.avi",
    ):
        _video(videos / relative)
    result = prepare_dataset("ucf101", annotations, videos, out)
    assert _lines(out / "train.txt") == _expected(
        out,
        [
            (videos / "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0),
            (videos / "HandstandPushups/v_HandstandPushups_g08_c01.avi", 36),
            (videos / "Hammering/v_Hammering_g09_c02.avi", 34),
            (videos / "HammerThrow/v_HammerThrow_g09_c01.avi", 35),
            (videos / "JumpRope/v_JumpRope_g10_c01.avi", 47),
            (videos / "JumpingJack/v_JumpingJack_g10_c01.avi", 46),
        ],
    )
    assert _lines(out / "val.txt") == _expected(
        out, [(videos / "HandstandPushups/v_HandstandPushups_g01_c02.avi", 36)]
    )
    assert _lines(out / "missing.txt") == ["val v_YoYo_g01_c01"]
    assert result.problems == [
        f"{annotations / 'trainlist01.txt'}:7: {_UCF101_ROW_PROBLEM} 'YoYo/v_YoYo_g25_c05.avi 102'"
    ]
    with pytest.raises(AnnotationError, match=r"trainlist02\.txt not found"):
        prepare_dataset("ucf101", annotations, videos, out, split=2)
    assert result.classes_used == names and result.left_out == 0


_UCF101_TRAINLIST = (  # rows of the official trainlist01.txt (1-based published labels)
    b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
    b"Archery/v_Archery_g08_c01.avi 3\r\n"
    b"Basketball/v_Basketball_g08_c01.avi 8\r\n"
    b"YoYo/v_YoYo_g08_c01.avi 101\r\n"
)


@pytest.mark.parametrize("renumbered", [False, True])
def test_prepare_ucf101_with_a_subset_of_the_classes(tmp_path: Path, renumbered: bool) -> None:
    """A classInd.txt of three classes, lines deleted (published numbers) or renumbered 1-3, with the
    official lists: rows of the three keep their published labels, the other rows are left out."""
    annotations, videos, out = tmp_path / "ucfTrainTestlist", tmp_path / "UCF-101", tmp_path / "out"
    annotations.mkdir()
    chosen = {1: "ApplyEyeMakeup", 3: "Archery", 101: "YoYo"}
    numbers = range(1, 4) if renumbered else chosen
    (annotations / "classInd.txt").write_bytes(
        "".join(f"{n} {name}\r\n" for n, name in zip(numbers, chosen.values(), strict=True)).encode()
    )
    (annotations / "trainlist01.txt").write_bytes(_UCF101_TRAINLIST)
    (annotations / "testlist01.txt").write_bytes(
        b"YoYo/v_YoYo_g01_c01.avi\r\nBiking/v_Biking_g01_c01.avi\r\n"
    )
    for relative in (
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        "Archery/v_Archery_g08_c01.avi",
        "YoYo/v_YoYo_g08_c01.avi",
        "YoYo/v_YoYo_g01_c01.avi",
        "Biking/v_Biking_g01_c01.avi",
    ):
        _video(videos / relative)
    result = prepare_dataset("ucf101", annotations, videos, out)
    assert result.classes_used == list(chosen.values()) and len(result.class_names) == 101
    assert _lines(out / "val.txt") == _expected(out, [(videos / "YoYo/v_YoYo_g01_c01.avi", 100)])
    trainlist = annotations / "trainlist01.txt"
    if not renumbered:
        assert _lines(out / "train.txt") == _expected(
            out,
            [
                (videos / "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0),
                (videos / "Archery/v_Archery_g08_c01.avi", 2),
                (videos / "YoYo/v_YoYo_g08_c01.avi", 100),
            ],
        )
        assert result.left_out == 2 and result.problems == []  # Basketball, Biking
    else:  # the official list's numbers contradict the renumbered file: refused row by row, not relabelled
        assert _lines(out / "train.txt") == _expected(
            out, [(videos / "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0)]
        )
        assert result.problems == [
            f"{trainlist}:2: {_UCF101_ROW_PROBLEM} 'Archery/v_Archery_g08_c01.avi 3'",
            f"{trainlist}:4: {_UCF101_ROW_PROBLEM} 'YoYo/v_YoYo_g08_c01.avi 101'",
        ]


# HMDB51 ------------------------------------------------------------------------------------------


def test_prepare_hmdb51(tmp_path: Path) -> None:
    annotations = tmp_path / "annotations" / "testTrainMulti_7030_splits"
    videos, out = tmp_path / "hmdb51", tmp_path / "out"
    annotations.mkdir(parents=True)
    for name in dataset_class_names("hmdb51"):
        (annotations / f"{name}_test_split1.txt").write_text("")
        (annotations / f"{name}_test_split2.txt").write_text("")
    (annotations / "brush_hair_test_split1.txt").write_text(
        "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \n"
        "April_09_brush_hair_u_nm_np1_ba_goo_1.avi 2 \n"
        "Brushing_my_waist_lenth_hair_brush_hair_u_nm_np1_ba_med_0.avi 0 \n"
    )
    (annotations / "wave_test_split1.txt").write_text(
        "wave_hello_(1)_wave_f_cm_np1_fr_med_0.avi 1 \nbad row\n"
    )
    (annotations / "cartwheel_test_split2.txt").write_text("Cartwheel_0_cartwheel_f_cm_np1_le_med_0.avi 1 \n")
    _video(videos / "brush_hair" / "April_09_brush_hair_u_nm_np1_ba_goo_0.avi")
    _video(videos / "brush_hair" / "April_09_brush_hair_u_nm_np1_ba_goo_1.avi")
    _video(videos / "brush_hair" / "Brushing_my_waist_lenth_hair_brush_hair_u_nm_np1_ba_med_0.avi")
    _video(videos / "wave" / "wave_hello_(1)_wave_f_cm_np1_fr_med_0.avi")
    _video(videos / "cartwheel" / "Cartwheel_0_cartwheel_f_cm_np1_le_med_0.avi")
    result = prepare_dataset("hmdb51", tmp_path / "annotations", videos, out)
    assert _lines(out / "train.txt") == _expected(
        out,
        [
            (videos / "brush_hair" / "April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 0),
            (videos / "wave" / "wave_hello_(1)_wave_f_cm_np1_fr_med_0.avi", 50),
        ],
    )
    assert _lines(out / "val.txt") == _expected(
        out, [(videos / "brush_hair" / "April_09_brush_hair_u_nm_np1_ba_goo_1.avi", 0)]
    )
    assert result.problems == [
        f"{annotations / 'wave_test_split1.txt'}:2: malformed row 'bad row' (expected '<video>.avi 0|1|2')"
    ]
    prepare_dataset("hmdb51", tmp_path / "annotations", videos, out, split=2)
    assert _lines(out / "train.txt") == _expected(
        out, [(videos / "cartwheel" / "Cartwheel_0_cartwheel_f_cm_np1_le_med_0.avi", 1)]
    )
    assert result.classes_used == dataset_class_names("hmdb51")


def test_prepare_hmdb51_with_a_subset_of_the_classes(tmp_path: Path) -> None:
    """The split files of two classes only: their published labels, two classes used."""
    annotations, videos, out = tmp_path / "splits", tmp_path / "hmdb51", tmp_path / "out"
    annotations.mkdir()
    (annotations / "wave_test_split1.txt").write_text("wave_a.avi 1 \nwave_b.avi 2 \n")
    (annotations / "brush_hair_test_split1.txt").write_text("brush_a.avi 1 \nbrush_b.avi 0 \n")
    (annotations / "wave_test_split2.txt").write_text("wave_a.avi 2 \n")  # another split: not read
    for name in ("wave/wave_a.avi", "wave/wave_b.avi", "brush_hair/brush_a.avi"):
        _video(videos / name)
    result = prepare_dataset("hmdb51", annotations, videos, out)
    assert _lines(out / "train.txt") == _expected(
        out, [(videos / "brush_hair/brush_a.avi", 0), (videos / "wave/wave_a.avi", 50)]
    )
    assert _lines(out / "val.txt") == _expected(out, [(videos / "wave/wave_b.avi", 50)])
    assert result.classes_used == ["brush_hair", "wave"] and len(result.class_names) == 51
    assert result.summary().splitlines()[0] == f"{out}: train 2, val 1 samples, 2 of the 51 classes"
    (annotations / "waving_test_split1.txt").write_text("w.avi 1\n")
    with pytest.raises(AnnotationError) as refused:
        prepare_dataset("hmdb51", annotations, videos, out)
    assert str(refused.value).startswith(f"1 split files under {annotations} name no HMDB51 class")
    assert "waving_test_split1.txt" in str(refused.value)


# Errors and the CLI ------------------------------------------------------------------------------


def test_prepare_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "v").mkdir()
    with pytest.raises(AnnotationError, match=r"train.csv or kinetics_train.csv not found under"):
        prepare_dataset("kinetics700", tmp_path / "a", tmp_path / "v", tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="videos folder not found"):
        prepare_dataset("kinetics700", tmp_path / "a", tmp_path / "nowhere", tmp_path / "o")
    (tmp_path / "a" / "train.csv").write_text("name,id\nx,y\n")
    with pytest.raises(AnnotationError, match="lacks youtube_id,time_start,time_end"):
        prepare_dataset("kinetics700", tmp_path / "a", tmp_path / "v", tmp_path / "o")
    (tmp_path / "a" / "train.csv").write_bytes(b"label,youtube_id\n\xff\xfe\x00")
    with pytest.raises(AnnotationError, match=r"train\.csv: not UTF-8 text"):
        prepare_dataset("kinetics700", tmp_path / "a", tmp_path / "v", tmp_path / "o")
    (tmp_path / "a" / "jester-v1-labels.csv").write_text("Swiping Left\nWaving Hello\nSwiping Left\n")
    with pytest.raises(AnnotationError, match=r"jester-v1-labels\.csv: repeated class names"):
        prepare_dataset("jester", tmp_path / "a", tmp_path / "v", tmp_path / "o")
    (tmp_path / "a" / "jester-v1-labels.csv").write_text("Swiping Left\nWaving Hello\n")
    with pytest.raises(AnnotationError, match=r"1 of its 2 class names are not classes .*\('Waving Hello'\)"):
        prepare_dataset("jester", tmp_path / "a", tmp_path / "v", tmp_path / "o")


def test_cli_prepare(tmp_path: Path, capsys) -> None:
    annotations, videos = _kinetics(tmp_path, mmaction_names=False)
    out = tmp_path / "lists"
    args = ["data", "prepare", "kinetics400", "--annotations", str(annotations), "--videos", str(videos)]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "train 4, val 1 samples, 5 of the 400 classes" in printed and "gone_000001_000011" in printed
    assert "3 problems" in printed
    shutil.rmtree(annotations)
    annotations.mkdir()
    assert main([*args, "--out", str(out)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("tsm data: error: annotation file train.csv or kinetics_train.csv not found")
    assert len(error.splitlines()) == 1
