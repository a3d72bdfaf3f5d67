"""The shared dataset format and its torch Dataset."""

from .manifest import (
    CUE_ARRAYS,
    ClipRecord,
    ManifestWriter,
    load_cue_arrays,
    read_manifest,
    validate_cue_arrays,
    write_clip,
)

__all__ = [
    "CUE_ARRAYS",
    "ClipRecord",
    "ManifestWriter",
    "MMPhysVideoDataset",
    "collate_clips",
    "sample_frame_indices",
    "load_cue_arrays",
    "read_manifest",
    "validate_cue_arrays",
    "write_clip",
]


def __getattr__(name):
    # the Dataset imports torch; keep the manifest tools light
    if name in ("MMPhysVideoDataset", "collate_clips", "sample_frame_indices"):
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(name)
