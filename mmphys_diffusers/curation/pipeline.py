"""The curation pipeline: ingest -> localise -> segment / depth / tracks -> verify -> write.

`CurationWorker` processes one source end to end and writes its accepted clips'
files (atomically). The driver, `run_curation`, is the single writer of
``manifest.jsonl`` and ``report.jsonl``, so any executor (inline, process pool,
Ray) can run the workers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..data.manifest import ClipRecord, ManifestWriter, read_manifest, write_clip
from ..errors import MMPhysInputError
from ..utils.atomic import atomic_write_json
from . import extract as _extract  # noqa: F401  (registers the extractor backends)
from . import localize as _localize  # noqa: F401  (registers the localiser backends)
from .config import CurationConfig
from .executors import Executor, get_executor
from .ingest import Segment, Source, discover_sources, ingest_source
from .localize.base import LocalizerTimeout
from .quality import judge, score_clip
from .registry import DEPTH_ESTIMATORS, LOCALIZERS, SEGMENTERS, TRACKERS
from .schema import caption_from_localization

logger = logging.getLogger(__name__)

REPORT_NAME = "report.jsonl"
SUMMARY_NAME = "summary.json"
PRODUCER = "mmphys curate"


class ClipRejected(Exception):
    """A clip that cannot be curated for a known reason (reported, not raised to the driver)."""


class CurationWorker:
    """Builds every stage once (models load here) and curates sources one at a time."""

    def __init__(self, config: CurationConfig, out_dir: str | os.PathLike):
        self.config = config
        self.out_dir = Path(out_dir)
        loc = config.localize
        self.localizer = LOCALIZERS.build(loc.backend, **loc.options)
        self.fallback = None
        if loc.fallback and loc.fallback != loc.backend:
            self.fallback = LOCALIZERS.build(loc.fallback)
        self.segmenter = SEGMENTERS.build(config.segment.backend, **config.segment.options)
        self.depth = DEPTH_ESTIMATORS.build(config.depth.backend, **config.depth.options)
        self.tracker = TRACKERS.build(config.tracks.backend, **config.tracks.options)
        self.codecs = {}
        if config.output.pseudo_rgb:
            from ..perception.base import get_codec

            self.codecs = {name: get_codec(name) for name in config.output.pseudo_rgb}

    # -- one source -------------------------------------------------------------------
    def process(self, source: Source | Mapping[str, Any], skip_clip_ids: Iterable[str] = ()) -> dict[str, Any]:
        """Curate one source. Never raises: failures come back as a result with a reason.

        Returns a JSON-serialisable dict ``{"source", "path", "status", "reason", "clips", "seconds"}``
        where status is "done", "rejected" (unreadable input) or "failed" (unexpected error).
        """
        if not isinstance(source, Source):
            source = Source(**source)
        skip = set(skip_clip_ids)
        t0 = time.perf_counter()
        result: dict[str, Any] = {"source": source.key, "path": source.path, "status": "done", "reason": None, "clips": []}
        try:
            segments, rejections = ingest_source(source, self.config.ingest)
            for r in rejections:
                result["clips"].append({"clip_id": r.clip_id, "status": "rejected", "reasons": [r.reason], "scores": {}, "record": None})
            for seg in segments:
                result["clips"].append(self._process_segment(seg, source, skip))
        except MMPhysInputError as exc:
            result.update(status="rejected", reason=str(exc))
        except Exception as exc:  # one bad source must never stop the run
            result.update(status="failed", reason=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=5))
        result["seconds"] = round(time.perf_counter() - t0, 3)
        return result

    def __call__(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return self.process(item["source"], item.get("skip", ()))

    def _process_segment(self, seg: Segment, source: Source, skip: set[str]) -> dict[str, Any]:
        entry: dict[str, Any] = {"clip_id": seg.clip_id, "status": "accepted", "reasons": [], "scores": {}, "record": None}
        if seg.clip_id in skip:
            entry["status"] = "exists"
            return entry
        try:
            loc, loc_info = self.localize(seg.frames)
            instances = self.segmenter.segment(seg.frames, loc).astype(np.int32)
            tracks = self.tracker.track(seg.frames)
            depth = self.depth.estimate(seg.frames, instances).astype(np.float32)
            scores = score_clip(loc, instances, depth, tracks)
            entry["scores"] = scores
            entry["reasons"] = judge(scores, self.config.quality)
            entry["status"] = "rejected" if entry["reasons"] else "accepted"
            if entry["status"] == "accepted" or self.config.output.keep_rejected:
                root = self.out_dir if entry["status"] == "accepted" else self.out_dir / "rejected"
                record = self._write(root, seg, source, loc, loc_info, scores, instances, depth, tracks)
                if entry["status"] == "accepted":
                    entry["record"] = dataclasses.asdict(record)
        except ClipRejected as exc:
            entry.update(status="rejected", reasons=[str(exc)])
        except MMPhysInputError as exc:
            entry.update(status="rejected", reasons=[str(exc)])
        except Exception as exc:
            entry.update(status="failed", reasons=[f"{type(exc).__name__}: {exc}"], traceback=traceback.format_exc(limit=5))
        return entry

    def localize(self, frames: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
        """Primary localiser with retries; then the fallback; else `ClipRejected`."""
        errors = []
        for attempt in range(1 + max(0, self.config.localize.retries)):
            try:
                return self.localizer.localize(frames), {"backend": self.config.localize.backend, "attempts": attempt + 1}
            except (MMPhysInputError, LocalizerTimeout, TimeoutError, ConnectionError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                logger.info("localiser attempt %d failed: %s", attempt + 1, exc)
        if self.fallback is not None:
            return self.fallback.localize(frames), {"backend": self.config.localize.fallback, "fallback_after": errors}
        raise ClipRejected(f"localiser failed after {len(errors)} attempt(s): {errors[-1]}")

    def _write(self, root, seg, source, loc, loc_info, scores, instances, depth, tracks):
        cues = {"instances": instances, "depth": depth, "tracks": tracks["tracks"], "visibility": tracks["visibility"]}
        if self.config.output.write_flow:
            cues["flow"] = tracks["flow"]
        pseudo, codec_meta = {}, {}
        for name, codec in self.codecs.items():
            arrays = {k: cues[k] for k in codec.required_arrays if k in cues}
            video, meta = codec.encode(**arrays)
            pseudo[name], codec_meta[name] = video, meta
        caption = source.caption or caption_from_localization(loc)
        meta = {
            **seg.meta,
            "producer": PRODUCER,
            "start_s": round(seg.start_s, 4),
            "end_s": round(seg.end_s, 4),
            "phenomenon": loc["phenomenon"]["label"],
            "subjects": [{"id": s["id"], "name": s["name"]} for s in loc["subjects"]],
            "localizer": loc_info,
            "quality": scores,
            "localization": f"clips/{seg.clip_id}/localization.json",
            "backends": {
                "segment": self.config.segment.backend,
                "depth": self.config.depth.backend,
                "tracks": self.config.tracks.backend,
            },
        }
        if codec_meta:
            meta["pseudo_rgb_meta"] = codec_meta
        atomic_write_json(Path(root) / "clips" / seg.clip_id / "localization.json", loc)
        return write_clip(root, seg.clip_id, seg.frames, caption, seg.fps, cue_arrays=cues, pseudo_rgb=pseudo, meta=meta, crf=self.config.output.crf)


@dataclasses.dataclass
class WorkerFactory:
    """Picklable recipe for a `CurationWorker` (sent to worker processes and Ray actors)."""

    config: dict[str, Any]
    out_dir: str

    def __call__(self) -> CurationWorker:
        return CurationWorker(CurationConfig.from_dict(self.config), self.out_dir)


# -- report ----------------------------------------------------------------------------
class ReportWriter:
    """Append-only ``report.jsonl``: one line per clip decision, then one per finished source."""

    def __init__(self, root: Path):
        self.path = Path(root) / REPORT_NAME
        self.sources: dict[str, dict[str, Any]] = {}
        self.clips: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):  # crash mid-append: drop the partial line
                from ..utils.atomic import atomic_write_bytes

                atomic_write_bytes(self.path, data[: data.rfind(b"\n") + 1])
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self._remember(json.loads(line))

    def _remember(self, entry: dict[str, Any]) -> None:
        if entry.get("type") == "source":
            self.sources[entry["source"]] = entry
        elif entry.get("type") == "clip":
            self.clips[entry["clip_id"]] = entry

    def append(self, entry: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, default=_json_default) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._remember(entry)

    def is_finished(self, key: str, retry_failed: bool) -> bool:
        entry = self.sources.get(key)
        if entry is None:
            return False
        if not retry_failed:
            return True
        clip_ok = all(self.clips.get(c, {}).get("status") in ("accepted", "exists") for c in entry.get("clips", []))
        return entry["status"] == "done" and clip_ok

    def summary(self) -> dict[str, Any]:
        src = Counter(e["status"] for e in self.sources.values())
        clips = Counter(e["status"] if e["status"] != "exists" else "accepted" for e in self.clips.values())
        reasons = Counter()
        for e in self.clips.values():
            for r in e.get("reasons", []):
                reasons[_reason_category(r)] += 1
        for e in self.sources.values():
            if e["status"] != "done":
                reasons[_reason_category(e.get("reason") or "unknown")] += 1
        return {
            "sources": {"total": len(self.sources), **dict(src)},
            "clips": {"total": len(self.clips), **dict(clips)},
            "reject_reasons": dict(reasons.most_common()),
        }


def _reason_category(reason: str) -> str:
    """Reason text up to its first colon, with file paths masked, so equal causes count together."""
    return re.sub(r"(/[^\s:]+)+", "<path>", reason.split(":")[0])[:80]


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# -- driver ----------------------------------------------------------------------------
def run_curation(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: CurationConfig | None = None,
    workers: int = 1,
    executor: str | Executor = "local",
    limit: int | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Curate INPUT into a dataset at `out_dir`; resumable. Returns the run summary (also in summary.json).

    Args:
        inputs: video files, frame folders, folders to search, ``.txt`` lists or a dataset folder.
        out_dir: the output dataset folder (created; an existing one is resumed).
        config: stage backends and thresholds (defaults: classical CPU backends).
        workers: processes (local) or actors (Ray); 1 runs inline.
        executor: "local", "ray", or an `Executor` instance (e.g. ``RayExecutor(8, num_gpus=1)``).
        limit: curate at most this many sources.
        retry_failed: also redo sources that were rejected or failed, or had rejected clips.
        progress: show a tqdm bar.
    """
    from tqdm.auto import tqdm


    config = config or CurationConfig()
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    out_resolved = out_dir.resolve()
    for item in [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs):
        if Path(item).resolve() == out_resolved:
            raise MMPhysInputError(f"--out {out_dir} is also an INPUT; write the curated dataset to another folder")
    # The output may sit inside a searched input folder: never curate our own clips.
    sources = [s for s in discover_sources(inputs) if not Path(s.path).resolve().is_relative_to(out_resolved)]
    sources = sources[:limit] if limit is not None else sources
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = ManifestWriter(
        out_dir,
        info={
            "producer": PRODUCER,
            "cue_arrays": ["instances", "depth", "tracks", "visibility"] + (["flow"] if config.output.write_flow else []),
            "pseudo_rgb": list(config.output.pseudo_rgb),
            "fps": config.ingest.target_fps,
            "curation_config": config.to_dict(),
        },
    )
    report = ReportWriter(out_dir)
    todo = [s for s in sources if not report.is_finished(s.key, retry_failed)]
    # Clips already in the manifest are never recomputed, even when their source is retried.
    existing = {r.id for r in read_manifest(out_dir)} if len(manifest) else set()
    items = [{"source": dataclasses.asdict(s), "skip": sorted(i for i in existing if i.startswith(s.key + "-"))} for s in todo]
    run = Counter()
    bar = tqdm(total=len(items), desc="curate", unit="src", disable=not progress)
    runner = executor if isinstance(executor, Executor) else get_executor(executor, workers)
    for result in runner.map(WorkerFactory(config.to_dict(), str(out_dir)), items):
        for clip in result["clips"]:
            record = clip.pop("record", None)
            if record is not None and not manifest.has(record["id"]):
                manifest.add(ClipRecord.from_dict(record))
            report.append({"type": "clip", "source": result["source"], **clip})
            run[f"clips_{clip['status']}"] += 1
        report.append({"type": "source", **{k: v for k, v in result.items() if k != "clips"}, "clips": [c["clip_id"] for c in result["clips"]]})
        run[f"sources_{result['status']}"] += 1
        bar.update(1)
        bar.set_postfix(accepted=run["clips_accepted"], rejected=run["clips_rejected"] + run["sources_rejected"], failed=run["clips_failed"] + run["sources_failed"])
    bar.close()
    elapsed = time.perf_counter() - t0
    summary = {
        "out": str(out_dir),
        "this_run": {
            "sources_found": len(sources),
            "sources_skipped": len(sources) - len(items),
            "sources_processed": len(items),
            **dict(run),
            "seconds": round(elapsed, 3),
            "clips_per_second": round(run["clips_accepted"] / elapsed, 4) if elapsed > 0 else 0.0,
        },
        "dataset": {"clips_in_manifest": len(manifest)},
        **report.summary(),
    }
    atomic_write_json(out_dir / SUMMARY_NAME, summary)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    r = summary["this_run"]
    lines = [
        f"curated {summary['out']}: {summary['dataset']['clips_in_manifest']} clip(s) in the manifest",
        f"  this run: {r['sources_processed']} source(s) processed, {r['sources_skipped']} already done; "
        f"clips accepted {r.get('clips_accepted', 0)}, rejected {r.get('clips_rejected', 0)}, failed {r.get('clips_failed', 0)}; "
        f"sources rejected {r.get('sources_rejected', 0)}, failed {r.get('sources_failed', 0)}; {r['seconds']:.1f} s",
    ]
    if summary["reject_reasons"]:
        lines.append("  reasons (all runs): " + "; ".join(f"{k} x{v}" for k, v in summary["reject_reasons"].items()))
    lines.append(f"  report: {Path(summary['out']) / REPORT_NAME}, summary: {Path(summary['out']) / SUMMARY_NAME}")
    return "\n".join(lines)
