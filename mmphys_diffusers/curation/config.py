"""One configuration file for the whole curation pipeline (JSON, or TOML on Python 3.11+).

Every stage names its backend (looked up in `registry.py`) and passes backend
options through ``options``. Unknown keys are errors, so a typo never silently
falls back to a default. See ``examples/curation_config.json`` and docs/curation.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import MMPhysInputError


@dataclass
class SceneCutConfig:
    # Bhattacharyya distance between consecutive HSV histograms above which a cut is declared.
    hist_threshold: float = 0.5
    # Mean absolute grey-level difference (0..255) above which a cut is always declared.
    pixel_threshold: float = 45.0
    # Adaptive rule: a difference this many times the local median difference (+-8 frames)
    # is a cut when it also exceeds min_pixel_diff; catches cuts between similar-looking shots.
    adaptive_ratio: float = 6.0
    min_pixel_diff: float = 8.0


@dataclass
class IngestConfig:
    target_fps: float | None = 8.0  # None keeps the source rate
    default_fps: float = 8.0  # rate assumed for frame folders, which carry none
    max_side: int = 256  # longer side after resizing (never upscales)
    size_multiple: int = 2  # output sides are multiples of this (even for H.264)
    reject_above_side: int = 8192  # sources larger than this are rejected, not decoded
    max_source_frames: int = 3000  # frames decoded per source at most
    min_frames: int = 8  # shorter scenes / clips are dropped
    max_frames: int = 49  # scenes longer than this are split into clips of this length
    motion_threshold: float = 0.5  # mean |frame difference| (0..255) below which a clip is static
    scene_cut: SceneCutConfig = field(default_factory=SceneCutConfig)


@dataclass
class StageConfig:
    backend: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LocalizeConfig(StageConfig):
    backend: str = "motion"
    retries: int = 2  # extra attempts after a timeout or malformed answer
    fallback: str | None = "motion"  # backend used when retries are spent; None rejects the clip


@dataclass
class QualityConfig:
    """Per-clip acceptance thresholds (documented in docs/curation.md)."""

    min_subjects: int = 1
    min_mask_stability: float = 0.2  # mean IoU of an instance mask between consecutive frames
    max_depth_inconsistency: float = 0.25  # mean relative change of flow-aligned depth between frames
    min_track_survival: float = 0.2  # fraction of frame-0 tracks still visible at the last frame
    max_track_fb_error: float = 2.0  # mean forward-backward error (px) of visible track steps
    min_evidence_agreement: float = 0.3  # mean IoU of localiser evidence boxes and mask boxes


@dataclass
class OutputConfig:
    write_flow: bool = True  # store forward flow as the "flow" cue array
    pseudo_rgb: list[str] = field(default_factory=list)  # perception codecs to render (e.g. ["depth"])
    crf: int = 18
    keep_rejected: bool = False  # also write rejected clips under <out>/rejected/ for inspection


@dataclass
class CurationConfig:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    localize: LocalizeConfig = field(default_factory=LocalizeConfig)
    segment: StageConfig = field(default_factory=lambda: StageConfig("box_propagate"))
    depth: StageConfig = field(default_factory=lambda: StageConfig("ground_plane"))
    tracks: StageConfig = field(default_factory=lambda: StageConfig("farneback"))
    quality: QualityConfig = field(default_factory=QualityConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "curation config") -> "CurationConfig":
        return _build(cls, data, where)


def _build(cls, data: Mapping[str, Any], where: str):
    if not isinstance(data, Mapping):
        raise MMPhysInputError(f"{where}: expected a table/object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise MMPhysInputError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        f = fields[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default) and not isinstance(default, type):
            # Nested section: start from its defaults so partial sections are allowed.
            merged = {**dataclasses.asdict(default), **dict(value)} if isinstance(value, Mapping) else value
            if isinstance(default, StageConfig) and isinstance(value, Mapping) and "backend" in value and "options" not in value:
                merged["options"] = {}  # a new backend does not inherit the old one's options
            kwargs[name] = _build(type(default), merged, f"{where}.{name}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> CurationConfig:
    """Read a JSON (``.json``) or TOML (``.toml``) config; missing keys keep their defaults."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise MMPhysInputError(f"curation config not found: {path}")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix.lower() == ".toml":
                try:
                    import tomllib
                except ImportError as exc:  # Python 3.10
                    raise MMPhysInputError(f"{path}: TOML configs need Python 3.11+; use a .json config") from exc
                data = tomllib.loads(text)
            else:
                data = json.loads(text)
        except (ValueError, json.JSONDecodeError) as exc:
            if isinstance(exc, MMPhysInputError):
                raise
            raise MMPhysInputError(f"{path}: cannot parse config: {exc}") from exc
    if overrides:
        data = _deep_merge(data, overrides)
    return CurationConfig.from_dict(data, where=str(path) if path else "curation config")


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out
