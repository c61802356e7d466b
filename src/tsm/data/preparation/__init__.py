"""Real datasets from their official downloads: annotation readers, list files, class names of
the published checkpoints, and video re-encoding / frame extraction for fast loading."""

from tsm.data.preparation.annotations import AnnotationError
from tsm.data.preparation.class_names import CLASS_ORDERS, DATASETS, dataset_class_names
from tsm.data.preparation.prepare import PreparedDataset, prepare_dataset
from tsm.data.preparation.transcode import TranscodeReport, extract_frames, resize_video, resize_videos

__all__ = [
    "CLASS_ORDERS",
    "DATASETS",
    "AnnotationError",
    "PreparedDataset",
    "TranscodeReport",
    "dataset_class_names",
    "extract_frames",
    "prepare_dataset",
    "resize_video",
    "resize_videos",
]
