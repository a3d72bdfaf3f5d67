"""Models bundled with the package: MMPhysVideo-Tiny (baseline, teacher, student).

The three diffusers pipeline folders live in ``mmphys_diffusers/assets/mmphysvideo-tiny/<kind>``
and are produced by the tiny recipe (docs/mmphysvideo_tiny.md):

    python train/recipes/mmphysvideo_tiny.py --preset gpu

``MMPHYS_BUNDLED_MODELS`` (a folder holding ``student/``, ``teacher/``, ``baseline/``) points the
lookup elsewhere, e.g. at the export folder of your own recipe run.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import MMPhysInputError

BUNDLED_MODEL_KINDS = ("student", "teacher", "baseline")
BUNDLED_MODELS_DIR = Path(__file__).resolve().parent / "mmphysvideo-tiny"
BUNDLED_MODELS_ENV = "MMPHYS_BUNDLED_MODELS"
RECIPE_COMMAND = "python train/recipes/mmphysvideo_tiny.py --preset cpu-1k  (or --preset gpu on a GPU; see docs/mmphysvideo_tiny.md)"


def bundled_models_dir() -> Path:
    """Folder holding the bundled ``student/``, ``teacher/``, ``baseline/`` pipelines (``$MMPHYS_BUNDLED_MODELS`` wins)."""
    override = os.environ.get(BUNDLED_MODELS_ENV)
    return Path(override) if override else BUNDLED_MODELS_DIR


def bundled_model_path(kind: str) -> Path:
    """Path of a bundled MMPhysVideo-Tiny pipeline folder.

    Args:
        kind: "student" (single-stream, `MMPhysVideoPipeline`), "teacher" (`MMPhysVideoTeacherPipeline`)
            or "baseline" (RGB-only, `MMPhysVideoPipeline`).

    Raises:
        MMPhysInputError: unknown kind, or the folder (with its ``model_index.json``) is absent; the message
            names the folder and the command that produces it.
    """
    if kind not in BUNDLED_MODEL_KINDS:
        raise MMPhysInputError(f"bundled model kind {kind!r}: expected one of {list(BUNDLED_MODEL_KINDS)}")
    path = bundled_models_dir() / kind
    if not (path / "model_index.json").is_file():
        raise MMPhysInputError(
            f"bundled {kind} model not found: {path} has no model_index.json. Produce it with the recipe: "
            f"{RECIPE_COMMAND}; or pass a model folder or Hub id with --model"
        )
    return path


__all__ = ["BUNDLED_MODEL_KINDS", "BUNDLED_MODELS_DIR", "bundled_model_path", "bundled_models_dir"]
