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
    "load_cue_arrays",
    "read_manifest",
    "validate_cue_arrays",
    "write_clip",
]


def __getattr__(name):
    if name == "MMPhysVideoDataset":  # imports torch; keep the manifest tools light
        from .dataset import MMPhysVideoDataset

        return MMPhysVideoDataset
    raise AttributeError(name)
