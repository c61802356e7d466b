"""Real datasets from their official downloads: annotation readers, list files, class names of
the published checkpoints, and video re-encoding / frame extraction for fast loading."""

from tsm.data.preparation.annotations import AnnotationError
from tsm.data.preparation.catalog import (
    DATASETS,
    PUBLIC_DATASETS,
    SOMETHING_V2_FLIP_LABEL_MAP,
    PublicDataset,
    dataset_named_in_file,
    public_dataset,
)
from tsm.data.preparation.class_names import CLASS_ORDERS, dataset_class_names
from tsm.data.preparation.prepare import PreparedDataset, prepare_dataset
from tsm.data.preparation.transcode import TranscodeReport, extract_frames, resize_video, resize_videos

__all__ = [
    "CLASS_ORDERS",
    "DATASETS",
    "PUBLIC_DATASETS",
    "SOMETHING_V2_FLIP_LABEL_MAP",
    "AnnotationError",
    "PreparedDataset",
    "PublicDataset",
    "TranscodeReport",
    "dataset_class_names",
    "dataset_named_in_file",
    "extract_frames",
    "prepare_dataset",
    "public_dataset",
    "resize_video",
    "resize_videos",
]
