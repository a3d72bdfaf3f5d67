"""Optional ComfyUI imports, with plain fallbacks so the pack also runs without ComfyUI.

Inside ComfyUI:
    * progress goes to ``comfy.utils.ProgressBar`` (the bar on the node in the UI);
    * the device comes from ``comfy.model_management.get_torch_device()``;
    * ``comfy.model_management.throw_exception_if_processing_interrupted()`` raises
      ComfyUI's ``InterruptProcessingException`` when the user pressed Cancel;
    * files are saved under ``folder_paths.get_output_directory()``.

Outside ComfyUI (tests, scripts): a tqdm bar, the CPU, a no-op interrupt check and
``./outputs`` (or ``$MMPHYS_COMFY_OUTPUT_DIR``).

The ComfyUI modules are looked up at call time, not at import time, because ComfyUI
may finish setting up its own modules after it imported this pack.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from mmphys_diffusers.errors import MMPhysInputError

OUTPUT_DIR_ENV = "MMPHYS_COMFY_OUTPUT_DIR"


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def comfy_available() -> bool:
    """True when running inside ComfyUI (its ``comfy`` package is importable)."""
    return _optional_module("comfy.model_management") is not None


class _FallbackInterruptProcessingException(Exception):
    """Stand-in for ComfyUI's exception; never raised outside ComfyUI."""


def interrupt_exception_class() -> type[BaseException]:
    """ComfyUI's ``InterruptProcessingException`` when available, else a local stand-in."""
    mm = _optional_module("comfy.model_management")
    return getattr(mm, "InterruptProcessingException", _FallbackInterruptProcessingException)


def throw_if_interrupted() -> None:
    """Raise ComfyUI's interrupt exception when the user cancelled the queue; a no-op without ComfyUI."""
    mm = _optional_module("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


def get_torch_device() -> torch.device:
    """ComfyUI's main device when available, else the CPU."""
    mm = _optional_module("comfy.model_management")
    if mm is not None:
        return torch.device(mm.get_torch_device())
    return torch.device("cpu")


class NodeProgress:
    """A progress bar shown on the running node in ComfyUI, or a tqdm bar elsewhere.

    >>> bar = NodeProgress(10, "denoising"); bar.update(1); bar.close()
    """

    def __init__(self, total: int, desc: str = "mmphys"):
        self.total = max(int(total), 1)
        self.current = 0
        utils = _optional_module("comfy.utils")
        self._comfy_bar = utils.ProgressBar(self.total) if utils is not None and hasattr(utils, "ProgressBar") else None
        self._tqdm = None
        if self._comfy_bar is None:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=self.total, desc=desc, leave=False)

    def update(self, n: int = 1) -> None:
        self.current = min(self.current + n, self.total)
        if self._comfy_bar is not None:
            self._comfy_bar.update_absolute(self.current, self.total)
        else:
            self._tqdm.update(n)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()

    def __enter__(self) -> "NodeProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def step_end_callback(progress: NodeProgress):
    """A diffusers ``callback_on_step_end`` that advances `progress` and honours ComfyUI's Cancel.

    Raising from the callback stops the denoising loop at once; ComfyUI reports the
    interrupt exception as "interrupted", not as an error.
    """

    def callback(pipe, step_index: int, timestep, callback_kwargs: dict) -> dict:
        progress.update(1)
        throw_if_interrupted()
        return callback_kwargs

    return callback


def output_directory() -> Path:
    """ComfyUI's output folder, else ``$MMPHYS_COMFY_OUTPUT_DIR`` or ``./outputs``."""
    fp = _optional_module("folder_paths")
    if fp is not None and hasattr(fp, "get_output_directory"):
        return Path(fp.get_output_directory())
    return Path(os.environ.get(OUTPUT_DIR_ENV, "outputs"))


def find_in_model_folders(folder_name: str, name: str) -> Path | None:
    """`name` inside one of ComfyUI's model folders (e.g. "loras", "diffusers"), or None.

    Lets users type a file or folder name relative to ``ComfyUI/models/<folder_name>``.
    """
    fp = _optional_module("folder_paths")
    if fp is None or not hasattr(fp, "get_folder_paths") or not name or os.path.isabs(name):
        return None
    try:
        bases = fp.get_folder_paths(folder_name)
    except (KeyError, AttributeError):
        return None
    for base in bases:
        candidate = Path(base) / name
        if candidate.exists():
            return candidate
    return None


_SAFE_NAME = re.compile(r"^[\w.\- ]+$")


def save_path(filename_prefix: str, suffix: str, width: int = 0, height: int = 0) -> tuple[Path, str, str]:
    """Next free output path for `filename_prefix` ("sub/folder/name" allowed).

    Returns ``(full_path, filename, subfolder)``; ``filename``/``subfolder`` are what the
    ComfyUI front end needs to show the file. Names follow ComfyUI's
    ``<prefix>_<counter:05>_.<suffix>`` pattern.
    """
    if not filename_prefix or not filename_prefix.strip():
        raise MMPhysInputError("filename_prefix is empty; expected a name such as 'mmphys/video'")
    root = output_directory()
    fp = _optional_module("folder_paths")
    if fp is not None and hasattr(fp, "get_save_image_path"):
        folder, name, counter, subfolder, _ = fp.get_save_image_path(filename_prefix, str(root), width, height)
        filename = f"{name}_{counter:05}_.{suffix}"
        return Path(folder) / filename, filename, subfolder
    parts = [p for p in filename_prefix.replace("\\", "/").split("/") if p]
    if any(p in (".", "..") or not _SAFE_NAME.match(p) for p in parts):
        raise MMPhysInputError(
            f"filename_prefix {filename_prefix!r} must be a relative name of letters, digits, '_', '-', '.', ' ' "
            "and '/' (no '..'), so files stay inside the output folder"
        )
    *sub, name = parts
    folder = root.joinpath(*sub)
    folder.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{re.escape(name)}_(\d+)_\.")
    taken = [int(m.group(1)) for f in folder.iterdir() if (m := pattern.match(f.name))]
    counter = max(taken, default=0) + 1
    filename = f"{name}_{counter:05}_.{suffix}"
    return folder / filename, filename, "/".join(sub)
