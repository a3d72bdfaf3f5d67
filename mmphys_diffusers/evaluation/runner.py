"""The physics benchmark: held-out simulated scenes -> prompts -> videos from each model -> metrics.

Held-out scenes come from the simulator with seeds that no training set uses
(`heldout_scenes`); their captions are the prompts and their clips the reference.
Every model is any object following diffusers' call convention
(``pipe(prompt=..., num_frames=..., height=..., width=..., num_inference_steps=...,
generator=..., output_type="np").frames``), or the string ``"simulator"``: a
pseudo-model that returns the simulator's own clip, the upper reference.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import MMPhysInputError
from ..utils.atomic import atomic_write_json, atomic_write_text
from .evaluate import METRIC_DIRECTIONS, evaluate_video, visible_objects
from .parsing import ObjectTracks, parse_objects
from .scene import SceneInfo

logger = logging.getLogger(__name__)

SIMULATOR_MODEL = "simulator"
# Dataset seed of the held-out split. Training sets draw clip seeds from
# SeedSequence([their seed, index]); this namespace is distinct, and seeds of a given
# training manifest are excluded explicitly (`exclude_seeds`).
HELDOUT_DATASET_SEED = 0x48454C44  # "HELD"
# Metrics shown in the markdown table, in order.
TABLE_METRICS = (
    "permanence",
    "g_rel_error",
    "parabola_rms_px",
    "ramp_accel_rel_error",
    "penetration_px",
    "restitution_max",
    "restitution_rel_error",
    "momentum_rel_change",
    "spatiotemporal_iou",
    "mse",
    "object_size_error",
    "text_adherence",
)


@dataclass
class HeldOutScene:
    """One benchmark prompt: its caption, scene facts and the simulator's reference clip."""

    id: str
    family: str
    seed: int
    caption: str
    scene: SceneInfo
    reference: np.ndarray  # uint8 [F, H, W, 3]


class SimulatorModel:
    """Pseudo-model that renders a held-out scene with the simulator itself.

    With no `transform` it is the ground-truth upper reference; with one (e.g.
    `corruptions.time_reverse`) it is a negative control that the metrics must flag.
    The runner calls ``render_heldout(scene, seed)`` instead of the diffusers call.
    """

    def __init__(self, transform: Callable[[np.ndarray], np.ndarray] | None = None):
        self.transform = transform

    def render_heldout(self, scene: "HeldOutScene", seed: int) -> np.ndarray:
        from ..simulation import simulate_clip

        f, h, w = scene.reference.shape[:3]
        frames = simulate_clip(scene.family, scene.seed, num_frames=f, height=h, width=w, fps=scene.scene.fps).rgb
        return frames if self.transform is None else np.ascontiguousarray(self.transform(frames))


def training_seeds(manifest_root: str | os.PathLike) -> set[int]:
    """Scene seeds used by a simulator dataset (from each record's ``meta["seed"]``)."""
    from ..data.manifest import read_manifest

    return {int(r.meta["seed"]) for r in read_manifest(manifest_root) if "seed" in r.meta}


def heldout_scenes(
    num_prompts: int,
    families: Sequence[str] | None = None,
    num_frames: int = 17,
    height: int = 64,
    width: int = 64,
    fps: float = 8.0,
    dataset_seed: int = HELDOUT_DATASET_SEED,
    exclude_seeds: Iterable[int] = (),
) -> list[HeldOutScene]:
    """Simulate `num_prompts` held-out scenes, families round-robin (in `SCENE_FAMILIES` order, whatever
    the order of `families`), seeds disjoint from `exclude_seeds`.

    Objects that never enter the reference clip's view are dropped from the scene
    (a model cannot be asked to show what the ground truth does not show).
    """
    from ..simulation import SCENE_FAMILIES, clip_seed, simulate_clip

    if num_prompts < 1:
        raise MMPhysInputError(f"num_prompts must be >= 1, got {num_prompts}")
    families = list(families or SCENE_FAMILIES)
    unknown = [f for f in families if f not in SCENE_FAMILIES]
    if unknown:
        raise MMPhysInputError(f"unknown scene family {unknown}; expected some of {list(SCENE_FAMILIES)}")
    # canonical order: the same family set always gives the same scenes, however it was listed
    families = [f for f in SCENE_FAMILIES if f in families]
    exclude = set(int(s) for s in exclude_seeds)
    scenes = []
    index = 0
    while len(scenes) < num_prompts:
        seed = clip_seed(dataset_seed, index)
        index += 1
        if seed in exclude:
            continue
        family = families[len(scenes) % len(families)]
        clip = simulate_clip(family, seed, num_frames=num_frames, height=height, width=width, fps=fps)
        scene = SceneInfo.from_meta(clip.meta, caption=clip.caption)
        tracks = parse_objects(clip.rgb, scene)
        seen = visible_objects(tracks)
        if seen.size == 0:
            continue
        if seen.size < len(scene.objects):
            scene = scene.subset(seen)
        scenes.append(HeldOutScene(f"heldout_{len(scenes):04d}", family, int(seed), clip.caption, scene, clip.rgb))
    return scenes


def generate_video(pipe: Any, prompt: str, seed: int, num_frames: int, height: int, width: int, num_inference_steps: int, **kwargs: Any) -> np.ndarray:
    """One video from a diffusers-style pipeline as uint8 ``[F, H, W, 3]``."""
    import torch

    from ..utils.video_io import to_uint8_frames

    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    out = pipe(
        prompt=prompt,
        num_frames=num_frames,
        height=height,
        width=width,
        num_inference_steps=num_inference_steps,
        generator=generator,
        output_type="np",
        **kwargs,
    )
    frames = out.frames if hasattr(out, "frames") else out[0]
    frames = np.asarray(frames[0] if isinstance(frames, (list, tuple)) or np.ndim(frames) == 5 else frames)
    return to_uint8_frames(frames)


def bootstrap_ci(values: Sequence[float], num_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap confidence interval of the mean: ``(mean, low, high)``."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    if x.size == 1:
        return (float(x[0]), float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(num_resamples, x.size))].mean(1)
    alpha = (1.0 - confidence) / 2.0
    return (float(x.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha)))


class VAERoundTrip:
    """Video transform: encode with a video VAE (posterior mean) and decode again.

    With `SimulatorModel` it gives the *VAE ceiling*: the ground-truth clips as a latent diffusion
    model using this VAE could at best draw them, so the physics metrics of a generated video can be
    read against what its own VAE preserves.
    """

    def __init__(self, vae: Any):
        self.vae = vae

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        import torch

        param = next(self.vae.parameters())
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(param.device, param.dtype)
        x = x.permute(3, 0, 1, 2)[None].div(127.5).sub(1.0).contiguous()  # [1, 3, F, H, W] in [-1, 1]
        with torch.no_grad():
            y = self.vae.decode(self.vae.encode(x).latent_dist.mode()).sample
        y = y[0, :, : frames.shape[0]].clamp(-1, 1).add(1.0).mul(127.5).round().byte()
        return y.permute(1, 2, 3, 0).cpu().numpy()


def run_physics_benchmark(
    models: Mapping[str, Any],
    out_dir: str | os.PathLike,
    num_prompts: int = 10,
    seeds: Sequence[int] = (0, 1),
    num_frames: int = 17,
    height: int = 64,
    width: int = 64,
    num_inference_steps: int = 20,
    families: Sequence[str] | None = None,
    exclude_seeds: Iterable[int] = (),
    fps: float = 8.0,
    feature_network: Any = None,
    num_bootstrap: int = 1000,
    save_videos: bool = True,
    pipeline_kwargs: Mapping[str, Any] | None = None,
    scenes: Sequence[HeldOutScene] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate every held-out prompt with every model and seed, score, aggregate, write reports.

    Args:
        models: label -> pipeline (diffusers call convention), ``"simulator"`` or a `SimulatorModel`.
        out_dir: receives ``results.json``, ``results.md`` and (with `save_videos`) ``videos/<label>/*.mp4``.
        seeds: generator seeds per prompt (the simulator row repeats its clip per seed).
        fps: frame rate of the held-out clips; generated frames are taken to play at it.
        feature_network: a `VideoFeatureNet` for the Fréchet distance (skipped when None).
        scenes: precomputed `heldout_scenes` (simulated here otherwise).
    Returns:
        the results dict also written to ``results.json``.
    """
    from tqdm.auto import tqdm

    from ..utils.video_io import write_video

    if not models:
        raise MMPhysInputError("run_physics_benchmark needs at least one model")
    if not seeds:
        raise MMPhysInputError("run_physics_benchmark needs at least one seed")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scenes = list(scenes) if scenes is not None else heldout_scenes(
        num_prompts, families, num_frames, height, width, fps=fps, exclude_seeds=exclude_seeds
    )
    rows: list[dict[str, Any]] = []
    videos_by_model: dict[str, list[np.ndarray]] = {}
    # models interleaved per (scene, seed): machine-load drift then hits every model's timing alike
    jobs = [(label, s, seed) for s in scenes for seed in seeds for label in models]
    reference_tracks: dict[str, ObjectTracks] = {}  # each scene's reference clip is parsed once, not per model and seed
    for label, s, seed in tqdm(jobs, desc="physics benchmark", disable=not progress):
        model = models[label]
        start = time.perf_counter()
        if isinstance(model, str) and model == SIMULATOR_MODEL:
            model = SimulatorModel()
        if hasattr(model, "render_heldout"):
            video = model.render_heldout(s, seed)
        elif isinstance(model, str):
            raise MMPhysInputError(f"model {label!r} is the string {model!r}; pass a loaded pipeline or {SIMULATOR_MODEL!r}")
        else:
            video = generate_video(
                model, s.caption, seed, s.reference.shape[0], s.reference.shape[1], s.reference.shape[2],
                num_inference_steps, **dict(pipeline_kwargs or {}),
            )
        seconds = time.perf_counter() - start
        if video.shape[1:3] != s.reference.shape[1:3]:
            raise MMPhysInputError(
                f"model {label!r} returned {video.shape[2]}x{video.shape[1]} frames for a {s.reference.shape[2]}x{s.reference.shape[1]} request"
            )
        reference = s.reference if video.shape == s.reference.shape else None
        if reference is not None and s.id not in reference_tracks:
            reference_tracks[s.id] = parse_objects(reference, s.scene)
        metrics = evaluate_video(video, s.scene, reference=reference, prompt=s.caption, reference_tracks=reference_tracks.get(s.id))
        details = metrics.pop("details")
        rows.append({"model": label, "scene": s.id, "family": s.family, "scene_seed": s.seed, "seed": int(seed),
                     "seconds": seconds, **metrics, "g_fit_detail": details["gravity"]["per_object"]})
        videos_by_model.setdefault(label, []).append(video)
        if save_videos:
            write_video(out_dir / "videos" / _safe(label) / f"{s.id}_seed{seed}.mp4", video, fps=s.scene.fps)

    summary = _aggregate(rows, list(models), num_bootstrap)
    if feature_network is not None:
        ref_feats = feature_network.extract_features([s.reference for s in scenes]) if len(scenes) >= 2 else None
        for label, vids in videos_by_model.items():
            if ref_feats is not None and len(vids) >= 2:
                from .features import frechet_distance

                summary[label]["frechet_distance"] = {"mean": frechet_distance(feature_network.extract_features(vids), ref_feats), "n": len(vids)}
    results = {
        "config": {
            "num_prompts": len(scenes), "seeds": [int(x) for x in seeds], "num_frames": num_frames, "height": height, "width": width,
            "num_inference_steps": num_inference_steps, "families": sorted({s.family for s in scenes}),
            "heldout_scene_seeds": [s.seed for s in scenes], "num_bootstrap": num_bootstrap,
        },
        "prompts": [{"scene": s.id, "family": s.family, "seed": s.seed, "caption": s.caption} for s in scenes],
        "summary": summary,
        "per_video": rows,
    }
    atomic_write_json(out_dir / "results.json", _jsonable(results))
    atomic_write_text(out_dir / "results.md", format_markdown_table(results))
    return results


def evaluate_dataset(
    root: str | os.PathLike,
    max_clips: int | None = None,
    num_bootstrap: int = 1000,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every clip of a dataset in the shared manifest format (decoded from its mp4).

    Each record's ``meta`` must describe the scene (as the simulator writes it); this is
    how generated videos saved with their scene meta, or the simulator's own H.264
    clips, are scored. Returns ``{"summary": {...}, "per_family": {...}, "per_clip": [...]}``.
    """
    from tqdm.auto import tqdm

    from ..data.manifest import read_manifest
    from ..utils.video_io import read_video

    records = read_manifest(root)[:max_clips]
    if not records:
        raise MMPhysInputError(f"dataset {root} has no clips")
    rows = []
    for record in tqdm(records, desc="evaluate", disable=not progress):
        frames, _ = read_video(Path(root) / record.rgb)
        scene = SceneInfo.from_record(record)
        if record.cues:  # objects that never enter the view are not expected in it
            from ..data.manifest import load_cue_arrays

            instances = load_cue_arrays(root, record, ["instances"]).get("instances")
            if instances is not None:
                seen = [k for k in range(len(scene.objects)) if (instances == k + 1).any()]
                if seen and len(seen) < len(scene.objects):
                    scene = scene.subset(seen)
        metrics = evaluate_video(frames, scene, prompt=record.caption)
        metrics.pop("details")
        rows.append({"model": "dataset", "id": record.id, "family": scene.family, **metrics})
    per_family = {}
    for family in sorted({r["family"] for r in rows if r["family"]}):
        per_family[family] = _aggregate([dict(r, model="dataset") for r in rows if r["family"] == family], ["dataset"], num_bootstrap)["dataset"]
    return {"summary": _aggregate(rows, ["dataset"], num_bootstrap)["dataset"], "per_family": per_family, "per_clip": rows}


def _aggregate(rows: list[dict[str, Any]], labels: list[str], num_bootstrap: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    metric_names = list(METRIC_DIRECTIONS) + ["object_size_ratio", "seconds"]
    for label in labels:
        mine = [r for r in rows if r["model"] == label]
        entry = {}
        for name in metric_names:
            if not any(name in r for r in mine):
                continue
            vals = [r.get(name) for r in mine]
            vals = [float(v) for v in vals if v is not None and np.isfinite(v)]
            mean, lo, hi = bootstrap_ci(vals, num_bootstrap)
            entry[name] = {"mean": mean, "ci95": [lo, hi], "n": len(vals)}
        entry["num_videos"] = len(mine)
        summary[label] = entry
    return summary


def paired_comparison(
    results: Mapping[str, Any],
    model: str,
    reference: str,
    metrics: Sequence[str] = tuple(METRIC_DIRECTIONS),
    num_bootstrap: int = 1000,
) -> dict[str, dict[str, Any]]:
    """Per-metric difference `model` - `reference` over the videos both made for the same prompt and seed.

    Pairing removes the prompt-to-prompt variance that dominates unpaired CIs. A metric counts as
    ``"better"`` / ``"worse"`` only when the 95% bootstrap CI of the mean paired difference excludes 0
    in the metric's direction (`METRIC_DIRECTIONS`), else ``"no difference"``.

    Returns:
        metric -> {"model", "reference" (means over the pairs), "difference", "ci95", "n", "verdict"}
        (metrics without any defined pair are left out).
    """
    rows = results.get("per_video", [])
    labels = {r["model"] for r in rows}
    for name in (model, reference):
        if name not in labels:
            raise MMPhysInputError(f"model {name!r} is not in these results; expected one of {sorted(labels)}")
    reference_rows = {(r["scene"], r["seed"]): r for r in rows if r["model"] == reference}
    row_pairs = [(r, reference_rows[(r["scene"], r["seed"])]) for r in rows
                 if r["model"] == model and (r["scene"], r["seed"]) in reference_rows]
    out: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        pairs = [(float(a[metric]), float(b[metric])) for a, b in row_pairs
                 if a.get(metric) is not None and b.get(metric) is not None and np.isfinite(a[metric]) and np.isfinite(b[metric])]
        if not pairs:
            continue
        mean, low, high = bootstrap_ci([a - b for a, b in pairs], num_bootstrap)
        # the CI in "improvement" units: positive means better in the metric's direction
        sign = 1.0 if METRIC_DIRECTIONS.get(metric, "higher") == "higher" else -1.0
        gain_low, gain_high = sorted((sign * low, sign * high))
        verdict = "better" if gain_low > 0 else "worse" if gain_high < 0 else "no difference"
        out[metric] = {"model": float(np.mean([a for a, _ in pairs])), "reference": float(np.mean([b for _, b in pairs])),
                       "difference": mean, "ci95": [low, high], "n": len(pairs), "verdict": verdict}
    return out


def format_paired_comparison(comparison: Mapping[str, Mapping[str, Any]], model: str, reference: str) -> str:
    """Markdown table of `paired_comparison`."""
    lines = [f"| metric | {model} | {reference} | {model} - {reference} [95% CI] | pairs | {model} is |", "|---|---|---|---|---|---|"]
    for metric, c in comparison.items():
        arrow = "↑" if METRIC_DIRECTIONS.get(metric, "higher") == "higher" else "↓"
        lines.append(f"| {metric} ({arrow}) | {c['model']:.3g} | {c['reference']:.3g} | {c['difference']:+.3g} "
                     f"[{c['ci95'][0]:+.3g}, {c['ci95'][1]:+.3g}] | {c['n']} | {c['verdict']} |")
    return "\n".join(lines) + "\n"


def format_markdown_table(results: Mapping[str, Any], metrics: Sequence[str] = TABLE_METRICS) -> str:
    """Markdown table: one row per model, ``mean [95% CI]`` per metric, plus seconds per video."""
    summary = results["summary"]
    head = ["model"] + [f"{m} ({'↑' if METRIC_DIRECTIONS.get(m) == 'higher' else '↓'})" for m in metrics] + ["FD (ours)", "s/video"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for label, entry in summary.items():
        cells = [label]
        for m in metrics:
            e = entry.get(m, {})
            if not e or e.get("n", 0) == 0 or not np.isfinite(e["mean"]):
                cells.append("n/a")
            else:
                lo, hi = e["ci95"]
                cells.append(f"{e['mean']:.3g} [{lo:.3g}, {hi:.3g}] (n={e['n']})")
        fd = entry.get("frechet_distance")
        cells.append(f"{fd['mean']:.3g}" if fd else "n/a")
        cells.append(f"{entry['seconds']['mean']:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    cfg = results["config"]
    lines.append("")
    lines.append(
        f"{cfg['num_prompts']} held-out prompts x {len(cfg['seeds'])} seeds, {cfg['num_frames']} frames at "
        f"{cfg['width']}x{cfg['height']}, {cfg['num_inference_steps']} steps; 95% percentile-bootstrap CIs of the mean "
        f"over videos. FD (ours) is a Fréchet distance on our own feature network: not comparable to published FVD."
    )
    return "\n".join(lines) + "\n"


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label) or "model"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


BUNDLED_PREFIX = "bundled"


def _pipeline_class_name(target: str) -> str | None:
    """``_class_name`` of a pipeline folder's or Hub repo's ``model_index.json`` (None when unreadable)."""
    from diffusers import DiffusionPipeline

    try:
        name = DiffusionPipeline.load_config(target).get("_class_name")
    except Exception:  # a missing folder/repo is reported by from_pretrained with the full reason
        return None
    # custom pipelines store [module file, class name]
    return name[-1] if isinstance(name, (list, tuple)) else name


def load_model(spec: str) -> tuple[str, Any]:
    """``"label=path_or_id"``, ``"path_or_id"``, ``"bundled:<kind>"``, ``"simulator"`` or ``"simulator@<model spec>"``
    -> (label, pipeline, "simulator" or a `SimulatorModel`).

    A folder whose ``model_index.json`` names `MMPhysVideoTeacherPipeline` loads with that class (its RGB
    stream is evaluated); every other folder or Hub id loads with `MMPhysVideoPipeline.from_pretrained`.
    ``bundled:student`` / ``bundled:teacher`` / ``bundled:baseline`` are the bundled MMPhysVideo-Tiny models.
    ``simulator@<spec>`` is the ground truth round-tripped through that model's VAE (`VAERoundTrip`).
    """
    label, _, target = spec.partition("=") if "=" in spec else (None, "", spec)
    target = target.strip()
    if target == SIMULATOR_MODEL:
        return (label or SIMULATOR_MODEL), SIMULATOR_MODEL
    if target.startswith(SIMULATOR_MODEL + "@"):
        # the ground truth through a model's VAE: what that model could at best draw
        _, pipe = load_model(target.partition("@")[2])
        if getattr(pipe, "vae", None) is None:
            raise MMPhysInputError(f"model spec {target!r}: the model after '@' has no VAE")
        return (label or target), SimulatorModel(VAERoundTrip(pipe.vae))
    if target == BUNDLED_PREFIX or target.startswith(BUNDLED_PREFIX + ":"):
        from ..assets import bundled_model_path

        kind = target.partition(":")[2] or "student"
        label, target = label or kind, str(bundled_model_path(kind))
    try:
        from ..pipelines import MMPhysVideoPipeline, MMPhysVideoTeacherPipeline
    except ImportError as exc:  # pragma: no cover - the pipelines package ships with the project
        raise MMPhysInputError(f"cannot import MMPhysVideoPipeline to load model {target!r}: {exc}") from exc
    if not (Path(target).exists() or "/" in target):
        raise MMPhysInputError(
            f"model {target!r} is neither an existing folder, a Hub id (owner/name), 'bundled:<student|teacher|baseline>' "
            f"nor {SIMULATOR_MODEL!r}"
        )
    cls = MMPhysVideoTeacherPipeline if _pipeline_class_name(target) == MMPhysVideoTeacherPipeline.__name__ else MMPhysVideoPipeline
    try:
        pipe = cls.from_pretrained(target)
    except MMPhysInputError:
        raise
    except Exception as exc:  # diffusers/hub raise many types for a bad folder or id
        raise MMPhysInputError(f"cannot load model {target!r} with {cls.__name__}.from_pretrained: {exc}") from exc
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return (label or Path(target).name or target), pipe
