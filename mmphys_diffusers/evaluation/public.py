"""Harness for public benchmarks whose judges are large downloaded models: VideoPhy and VBench.

We do not ship (or invent) their prompt lists or judges. The user passes the official
prompt list (``--prompts-file``) and the judge weights (``--judge-path``); the harness
checks the judge is there *before* generating anything, generates every prompt with
every model in the layout the official scorer reads, then runs the official scorer.

- VideoPhy (Bansal et al. 2024): judge VideoCon-Physics, run through the scripts of the
  VideoPhy repository; scores SA (semantic adherence) and PC (physical commonsense).
- VBench (Huang et al. 2024): the ``vbench`` package and its per-dimension models
  (e.g. DINO for subject consistency, AMT for motion smoothness, MUSIQ for imaging quality).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import MMPhysInputError
from ..utils.atomic import atomic_write_json

logger = logging.getLogger(__name__)

PUBLIC_BENCHMARKS = ("videophy", "vbench")
WEIGHT_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth", ".ckpt")
VIDEOPHY_SCRIPTS = ("utils/prepare_data.py", "videocon/training/pipeline_video/entailment_inference.py")
VBENCH_DEFAULT_DIMENSIONS = ("subject_consistency", "motion_smoothness", "imaging_quality")

VIDEOPHY_HELP = (
    "VideoPhy scoring needs the VideoCon-Physics judge and the VideoPhy code, which are not bundled:\n"
    "  1. judge weights: `git lfs install && git clone https://huggingface.co/videophysics/videocon_physics` "
    "-> pass that folder as --judge-path;\n"
    "  2. scorer code: `git clone https://github.com/Hritikbansal/videophy` and install its requirements "
    "-> pass its videophy/ folder (holding utils/prepare_data.py and videocon/) as --judge-repo;\n"
    "  3. prompts: the VideoPhy test captions from that repository, one per line -> --prompts-file."
)
VBENCH_HELP = (
    "VBench scoring needs the `vbench` package and its dimension models, which are not bundled:\n"
    "  1. `pip install vbench` (https://github.com/Vchitect/VBench);\n"
    "  2. VBench downloads each dimension's model (DINO for subject_consistency, AMT-S for motion_smoothness "
    "-> amt_model/amt-s.pth, MUSIQ for imaging_quality -> pyiqa_model/...) into its cache folder "
    "(VBENCH_CACHE_DIR, default ~/.cache/vbench) on first use: run it once on a machine with network access and "
    "pass that cache folder as --judge-path;\n"
    "  3. prompts: VBench's prompt suite (the prompts/ folder of that repository) -> --prompts-file."
)


def read_prompts_file(path: str | os.PathLike) -> list[str]:
    """Prompts from a text file (one per line; blank lines and ``#`` comments skipped), a CSV
    with a ``caption``/``prompt``/``text`` column, or a JSON list of strings."""
    path = Path(path)
    if not path.is_file():
        raise MMPhysInputError(f"prompts file not found: {path} (expected a .txt with one prompt per line, a .csv or a .json list)")
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list) or not all(isinstance(p, str) for p in data):
            raise MMPhysInputError(f"{path}: JSON prompts file must hold a list of strings")
        prompts = [p.strip() for p in data if p.strip()]
    elif path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            column = next((c for c in ("caption", "prompt", "text") if c in (reader.fieldnames or [])), None)
            if column is None:
                raise MMPhysInputError(f"{path}: CSV prompts file needs a 'caption', 'prompt' or 'text' column, got {reader.fieldnames}")
            prompts = [row[column].strip() for row in reader if row[column].strip()]
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
        prompts = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not prompts:
        raise MMPhysInputError(f"prompts file {path} holds no prompts")
    return prompts


def _has_weights(folder: Path) -> bool:
    return any(p.suffix.lower() in WEIGHT_SUFFIXES for p in folder.rglob("*") if p.is_file())


def check_judge(benchmark: str, judge_path: str | os.PathLike | None, judge_repo: str | os.PathLike | None = None) -> None:
    """Raise `MMPhysInputError` saying exactly what to download when the judge is not available."""
    if benchmark not in PUBLIC_BENCHMARKS:
        raise MMPhysInputError(f"unknown public benchmark {benchmark!r}; expected one of {PUBLIC_BENCHMARKS}")
    help_text = VIDEOPHY_HELP if benchmark == "videophy" else VBENCH_HELP
    if judge_path is None:
        raise MMPhysInputError(f"no --judge-path given.\n{help_text}")
    judge_path = Path(judge_path)
    if not judge_path.is_dir():
        raise MMPhysInputError(f"--judge-path {judge_path} is not a folder.\n{help_text}")
    if benchmark == "videophy":
        if not _has_weights(judge_path):
            raise MMPhysInputError(f"--judge-path {judge_path} holds no weight files ({', '.join(WEIGHT_SUFFIXES)}).\n{help_text}")
        if judge_repo is None:
            raise MMPhysInputError(f"no --judge-repo given (the VideoPhy code that runs the judge).\n{help_text}")
        missing = [s for s in VIDEOPHY_SCRIPTS if not (Path(judge_repo) / s).is_file()]
        if missing:
            raise MMPhysInputError(f"--judge-repo {judge_repo} lacks {missing}.\n{help_text}")
    else:
        # VBench reads its model folder from this variable (default ~/.cache/vbench), possibly at import.
        os.environ["VBENCH_CACHE_DIR"] = str(judge_path)
        try:
            import vbench  # noqa: F401
        except ImportError as exc:
            raise MMPhysInputError(f"the `vbench` package is not installed ({exc}).\n{help_text}") from exc
        if not any(judge_path.iterdir()):
            raise MMPhysInputError(f"--judge-path {judge_path} is empty.\n{help_text}")


def video_filename(benchmark: str, prompt: str, seed: int) -> str:
    """File name the official scorer expects: VideoPhy maps spaces to '_', VBench reads ``<prompt>-<index>``."""
    clean = prompt.strip().rstrip(".").replace("/", " ")
    if benchmark == "videophy":
        return clean.replace(" ", "_") + (f"_{seed}" if seed else "") + ".mp4"
    return f"{clean}-{seed}.mp4"


def run_public_benchmark(
    benchmark: str,
    models: Mapping[str, Any],
    prompts_file: str | os.PathLike,
    out_dir: str | os.PathLike,
    judge_path: str | os.PathLike | None,
    judge_repo: str | os.PathLike | None = None,
    seeds: Sequence[int] = (0,),
    num_frames: int = 49,
    height: int = 480,
    width: int = 720,
    num_inference_steps: int = 50,
    fps: float = 8.0,
    device: str = "cuda",
    dimensions: Sequence[str] = VBENCH_DEFAULT_DIMENSIONS,
    pipeline_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Generate the public prompt set with each model and score it with the public judge.

    The judge is checked first (`check_judge`), so a missing download fails in seconds
    rather than after hours of generation. Returns (and writes ``<out_dir>/<benchmark>_results.json``)
    per-model scores.
    """
    from tqdm.auto import tqdm

    from ..utils.video_io import write_video
    from .runner import SIMULATOR_MODEL, generate_video

    check_judge(benchmark, judge_path, judge_repo)
    prompts = read_prompts_file(prompts_file)
    out_dir = Path(out_dir)
    results: dict[str, Any] = {"benchmark": benchmark, "num_prompts": len(prompts), "seeds": list(seeds), "models": {}}
    for label, pipe in models.items():
        if isinstance(pipe, str) and pipe == SIMULATOR_MODEL:
            raise MMPhysInputError(f"the {SIMULATOR_MODEL!r} pseudo-model only renders our synthetic scenes, not public prompts")
        video_dir = out_dir / benchmark / _safe(label)
        entries = []
        for prompt in tqdm(prompts, desc=f"{benchmark}: {label}"):
            for seed in seeds:
                path = video_dir / video_filename(benchmark, prompt, seed)
                if not path.exists():  # resumable: generation is the expensive part
                    frames = generate_video(pipe, prompt, seed, num_frames, height, width, num_inference_steps, **dict(pipeline_kwargs or {}))
                    write_video(path, frames, fps=fps)
                entries.append((str(path.resolve()), prompt))
        if benchmark == "videophy":
            scores = _score_videophy(entries, video_dir, Path(judge_path), Path(judge_repo))
        else:
            scores = _score_vbench(video_dir, label, Path(judge_path), device, dimensions)
        results["models"][label] = scores
    atomic_write_json(out_dir / f"{benchmark}_results.json", results)
    return results


def _score_videophy(entries: list[tuple[str, str]], video_dir: Path, judge_path: Path, judge_repo: Path) -> dict[str, Any]:
    """Run VideoPhy's own data preparation and entailment scripts; SA/PC = share of scores >= 0.5."""
    input_csv = video_dir / "videophy_input.csv"
    with open(input_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["videopath", "caption"])
        writer.writerows(entries)
    work = video_dir / "videophy_eval"
    work.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, VIDEOPHY_SCRIPTS[0], "--input_csv", str(input_csv), "--output_folder", str(work)], cwd=judge_repo)
    scores = {}
    for key, name in (("SA", "sa_testing.csv"), ("PC", "physics_testing.csv")):
        out_csv = work / f"videocon_physics_{name}"
        _run([sys.executable, VIDEOPHY_SCRIPTS[1], "--input_csv", str(work / name), "--output_csv", str(out_csv),
              "--checkpoint", str(judge_path)], cwd=judge_repo)
        values = _last_numeric_column(out_csv)
        scores[key] = sum(v >= 0.5 for v in values) / len(values) if values else None
        scores[f"{key}_mean_score"] = sum(values) / len(values) if values else None
    return scores


def _score_vbench(video_dir: Path, label: str, judge_path: Path, device: str, dimensions: Sequence[str]) -> dict[str, Any]:
    """VBench in ``custom_input`` mode with the dimension models read from `judge_path`."""
    os.environ["VBENCH_CACHE_DIR"] = str(judge_path)
    import vbench
    from vbench import VBench

    full_info = Path(vbench.__file__).parent / "VBench_full_info.json"
    out = video_dir / "vbench_eval"
    bench = VBench(device, str(full_info), str(out))
    bench.evaluate(videos_path=str(video_dir), name=_safe(label), dimension_list=list(dimensions), local=True, mode="custom_input")
    result_files = sorted(out.glob(f"{_safe(label)}*_eval_results.json"))
    if not result_files:
        raise MMPhysInputError(f"VBench wrote no results into {out}")
    data = json.loads(result_files[-1].read_text())
    return {dim: (vals[0] if isinstance(vals, list) else vals) for dim, vals in data.items()}


def _run(cmd: list[str], cwd: Path) -> None:
    logger.info("running %s (in %s)", " ".join(cmd), cwd)
    proc = subprocess.run(cmd, cwd=str(cwd), capture_output=True, text=True)
    if proc.returncode != 0:
        raise MMPhysInputError(f"judge command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")


def _last_numeric_column(path: Path) -> list[float]:
    if not path.exists():
        raise MMPhysInputError(f"judge output not found: {path}")
    values = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            try:
                values.append(float(row[-1]))
            except (ValueError, IndexError):
                continue  # header
    return values


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label) or "model"
