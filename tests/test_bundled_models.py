"""The bundled MMPhysVideo-Tiny models (``mmphys_diffusers/assets/mmphysvideo-tiny``), exactly as shipped.

These run the real weights on CPU: `mmphys generate`'s default model, loading with stock diffusers,
and `mmphys eval physics` reproducing rows of the shipped benchmark table.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmphys_diffusers.assets import BUNDLED_MODEL_KINDS, BUNDLED_MODELS_DIR

pytestmark = pytest.mark.skipif(
    not all((BUNDLED_MODELS_DIR / kind / "model_index.json").is_file() for kind in BUNDLED_MODEL_KINDS),
    reason="this install carries no bundled MMPhysVideo-Tiny weights",
)


@pytest.fixture(autouse=True)
def _shipped_models(monkeypatch):
    monkeypatch.delenv("MMPHYS_BUNDLED_MODELS", raising=False)


def test_bundle_is_complete_documented_and_small():
    total = sum(f.stat().st_size for f in BUNDLED_MODELS_DIR.rglob("*") if f.is_file())
    assert total < 64 * 2**20, f"bundled models take {total / 2**20:.1f} MiB"
    for kind in BUNDLED_MODEL_KINDS:
        folder = BUNDLED_MODELS_DIR / kind
        card = (folder / "README.md").read_text()
        for needle in ("## How it was trained", "command:", "hardware:", "training time:", "library_name: diffusers"):
            assert needle in card, (kind, needle)
        recipe = json.loads((folder / "mmphys_recipe.json").read_text())
        assert recipe["kind"] == kind and recipe["training"]["global_step"] > 0
        assert (folder / "sample.mp4").stat().st_size > 0
    table = json.loads((BUNDLED_MODELS_DIR / "benchmark" / "results.json").read_text())
    assert set(BUNDLED_MODEL_KINDS) <= set(table["summary"])
    assert (BUNDLED_MODELS_DIR / "feature-net").is_dir()


def test_compare_reads_the_shipped_table(capsys):
    from mmphys_diffusers.cli.main import main

    assert main(["eval", "compare", "bundled", "--model", "student", "--reference", "baseline"]) == 0
    assert "| permanence (↑) |" in capsys.readouterr().out


def test_student_is_a_stock_diffusers_pipeline():
    """A stock WanPipeline with a stock Wan transformer; its tiny VAE class needs `import mmphys_diffusers.models`."""
    import mmphys_diffusers.models  # noqa: F401  (registers AutoencoderKLTinyVideo for diffusers' loader)
    from diffusers import DiffusionPipeline, WanPipeline, WanTransformer3DModel

    pipe = DiffusionPipeline.from_pretrained(BUNDLED_MODELS_DIR / "student")
    assert type(pipe) is WanPipeline and type(pipe.transformer) is WanTransformer3DModel


def test_generate_defaults_to_the_bundled_student_which_draws_objects(tmp_path):
    """`mmphys generate PROMPT -o out.mp4` with no --model: the bundled student, frames/size from its recipe;
    the video is that pipeline's output and holds palette-coloured objects (the first CPU run drew empty scenes)."""
    import torch

    from mmphys_diffusers.cli.main import main
    from mmphys_diffusers.evaluation.text import detect_colours
    from mmphys_diffusers.pipelines import MMPhysVideoPipeline
    from mmphys_diffusers.utils.video_io import read_video

    prompt = "a red ball falls and bounces on the floor"
    out = tmp_path / "student.mp4"
    assert main(["generate", prompt, "-o", str(out)]) == 0
    frames, _ = read_video(out)
    assert frames.shape == (17, 64, 64, 3)
    pipe = MMPhysVideoPipeline.from_pretrained(BUNDLED_MODELS_DIR / "student")
    direct = pipe(prompt, num_frames=17, height=64, width=64, num_inference_steps=20, guidance_scale=1.0,
                  generator=torch.Generator().manual_seed(0), output_type="np").frames[0]
    assert np.abs(frames.astype(float) - direct * 255).mean() < 4  # the same video, up to H.264
    assert sum(detect_colours(frames).values()) >= 1


def test_eval_reproduces_rows_of_the_shipped_table(tmp_path):
    """The first held-out prompt, seed 0, through `mmphys eval physics` with the bundled specs: the same
    video-level metrics as the shipped ``benchmark/results.json``."""
    from mmphys_diffusers.cli.main import main

    shipped = json.loads((BUNDLED_MODELS_DIR / "benchmark" / "results.json").read_text())
    config = shipped["config"]
    argv = ["eval", "physics", "--model", "bundled:baseline", "--model", "bundled:student", "--num-prompts", "1", "--seeds", "0",
            "--steps", str(config["num_inference_steps"]), "--guidance-scale", "1.0", "--no-videos", "--out", str(tmp_path)]
    assert main(argv) == 0
    fresh = json.loads((tmp_path / "results.json").read_text())
    assert fresh["config"]["heldout_scene_seeds"] == config["heldout_scene_seeds"][:1]
    keys = ("permanence", "text_adherence", "spatiotemporal_iou", "mse", "penetration_px")
    for row in fresh["per_video"]:
        [ref] = [r for r in shipped["per_video"] if (r["model"], r["scene"], r["seed"]) == (row["model"], row["scene"], row["seed"])]
        for key in keys:
            if ref.get(key) is None:
                assert row.get(key) is None, (row["model"], key)
            else:
                assert row[key] == pytest.approx(ref[key], rel=1e-3, abs=1e-4), (row["model"], key)


def test_denoising_loss_tells_the_trained_student_from_its_random_init(tmp_path):
    """`denoising_loss_by_noise_level`: deterministic per clip, far lower for trained weights, and clear refusals."""
    import torch

    from mmphys_diffusers.errors import MMPhysInputError
    from mmphys_diffusers.evaluation.denoising_loss import denoising_loss_by_noise_level
    from mmphys_diffusers.evaluation.runner import load_model
    from mmphys_diffusers.simulation import generate_dataset

    generate_dataset(tmp_path / "clips", num_clips=3, num_frames=17, size=64, seed=123, workers=1)
    _, pipe = load_model("bundled:student")
    trained = denoising_loss_by_noise_level(pipe, tmp_path / "clips", sigmas=(0.3, 0.7))
    again = denoising_loss_by_noise_level(pipe, tmp_path / "clips", sigmas=(0.3, 0.7))
    assert trained["loss"] == again["loss"] and len(trained["loss"]) == 3 and len(trained["mean"]) == 2
    torch.manual_seed(0)
    pipe.transformer = type(pipe.transformer).from_config(pipe.transformer.config)
    untrained = denoising_loss_by_noise_level(pipe, tmp_path / "clips", sigmas=(0.3, 0.7))
    assert all(u > 2 * t for u, t in zip(untrained["mean"], trained["mean"])), (untrained["mean"], trained["mean"])
    with pytest.raises(MMPhysInputError, match="noise levels in \\(0, 1\\)"):
        denoising_loss_by_noise_level(pipe, tmp_path / "clips", sigmas=(0.0, 0.5))
    _, teacher = load_model("bundled:teacher")
    with pytest.raises(MMPhysInputError, match="two-stream teacher"):
        denoising_loss_by_noise_level(teacher, tmp_path / "clips")


def test_generalisation_benchmark_writes_its_table_and_refuses_overlapping_sets(tmp_path):
    """benchmarks/bench_generalisation.py end to end on the bundled baseline, 2 + 2 clips."""
    import importlib.util
    from pathlib import Path

    from mmphys_diffusers.errors import MMPhysInputError
    from mmphys_diffusers.simulation import generate_dataset

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_generalisation.py"
    spec = importlib.util.spec_from_file_location("bench_generalisation", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    generate_dataset(tmp_path / "train", num_clips=2, seed=5, workers=1, progress=False)
    generate_dataset(tmp_path / "heldout", num_clips=2, seed=50_000, workers=1, progress=False)
    args = ["--model", "base=bundled:baseline", "--train", str(tmp_path / "train"), "--max-clips", "2", "--out", str(tmp_path / "out")]
    assert bench.main(args + ["--heldout", str(tmp_path / "heldout")]) == 0
    report = json.loads((tmp_path / "out" / "generalisation.json").read_text())
    ratio, low, high = report["models"]["base"]["gap"]
    assert low <= ratio <= high and ratio > 0 and len(report["models"]["base"]["heldout"]["loss"]) == 2
    assert "| base |" in (tmp_path / "out" / "generalisation.md").read_text()
    with pytest.raises(MMPhysInputError, match="shares 2 scene seeds"):
        bench.main(args + ["--heldout", str(tmp_path / "train")])
