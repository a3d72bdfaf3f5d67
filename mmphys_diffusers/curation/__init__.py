"""MMPhysPipe data curation (`mmphys curate`).

Stages: ingest (probe, decode, scene cuts, fps/size normalisation, motion filter)
-> physical-subject localisation with chain-of-visual-evidence (classical motion
localiser by default; OpenAI-compatible HTTP or transformers VLMs)
-> segmentation, depth and dense tracks (classical CPU defaults; SAM2 video and
Depth Anything through transformers) -> quality verification -> the shared
dataset format (`mmphys_diffusers.data.manifest`) plus ``report.jsonl``.
"""

from .config import CurationConfig, load_config
from .executors import LocalExecutor, RayExecutor, get_executor
from .ingest import Segment, Source, discover_sources, ingest_source
from .pipeline import CurationWorker, format_summary, run_curation
from .registry import DEPTH_ESTIMATORS, LOCALIZERS, SEGMENTERS, TRACKERS, Registry
from .schema import LOCALIZATION_SCHEMA, validate_localization

__all__ = [
    "CurationConfig",
    "load_config",
    "run_curation",
    "format_summary",
    "CurationWorker",
    "LocalExecutor",
    "RayExecutor",
    "get_executor",
    "Source",
    "Segment",
    "discover_sources",
    "ingest_source",
    "Registry",
    "LOCALIZERS",
    "SEGMENTERS",
    "DEPTH_ESTIMATORS",
    "TRACKERS",
    "LOCALIZATION_SCHEMA",
    "validate_localization",
]
