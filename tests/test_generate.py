"""`mmphys generate` and the bundled-model lookup, on tiny pipelines saved to tmp folders."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from mmphys_diffusers.errors import MMPhysInputError

RECIPE = {
    "perception_cue": "unified",
    "perception_codec_kwargs": {"near": 4.0, "far": 16.0, "max_flow": 5.0, "max_instances": 8},
    "generation_defaults": {"num_frames": 9, "height": 32, "width": 32, "num_inference_steps": 2, "guidance_scale": 1.0},
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A bundled-models folder with a tiny student and teacher (random weights) and their recipe files."""
    from mmphys_diffusers.backbones import get_backbone_adapter, tiny_components
    from mmphys_diffusers.pipelines import MMPhysVideoPipeline, MMPhysVideoTeacherPipeline

    root = tmp_path_factory.mktemp("bundled")
    MMPhysVideoPipeline(**tiny_components("tiny-wan", seed=0)).save_pretrained(root / "student")
    comps = tiny_components("tiny-wan", seed=1)
    comps["transformer"] = get_backbone_adapter("tiny-wan").build_teacher(comps["transformer"])
    MMPhysVideoTeacherPipeline(**comps).save_pretrained(root / "teacher")
    for kind in ("student", "teacher"):
        (root / kind / "mmphys_recipe.json").write_text(json.dumps({**RECIPE, "kind": kind}))
    return root


def _parser() -> argparse.ArgumentParser:
    from mmphys_diffusers.cli import generate

    parser = argparse.ArgumentParser(prog="mmphys")
    generate.register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(["generate", *argv])
    return args.func(args)


def test_generate_student_with_bundled_default(models, tmp_path, monkeypatch, capsys):
    from mmphys_diffusers.utils.video_io import read_video

    monkeypatch.setenv("MMPHYS_BUNDLED_MODELS", str(models))
    out = tmp_path / "student.mp4"
    assert _run(["a red ball falls and bounces on the floor", "-o", str(out), "--seed", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    frames, fps = read_video(out)
    assert frames.shape == (9, 32, 32, 3)  # frames/size from the model's mmphys_recipe.json
    assert fps == 8.0
    # explicit overrides win over the recipe defaults
    out2 = tmp_path / "student_5f.mp4"
    _run(["a ball", "-o", str(out2), "--model", str(models / "student"), "--frames", "5", "--size", "48x32", "--steps", "1"])
    assert read_video(out2)[0].shape == (5, 48, 32, 3)


def test_generate_teacher_writes_rgb_and_perception_side_by_side(models, tmp_path, monkeypatch):
    from mmphys_diffusers.utils.video_io import read_video

    monkeypatch.setenv("MMPHYS_BUNDLED_MODELS", str(models))
    out = tmp_path / "teacher.mp4"
    assert _run(["a ball rolls down a ramp", "-o", str(out), "--teacher"]) == 0
    frames, _ = read_video(out)
    # RGB (32) | 2 px gap | disparity, instances, motion panels (3 x 32)
    assert frames.shape == (9, 32, 32 + 2 + 96, 3)
    assert frames[:, :, 32:34].mean() > 200  # the white gap (H.264 blurs its edges)
    # a teacher folder passed with --model generates jointly without --teacher too
    out2 = tmp_path / "teacher2.mp4"
    _run(["a ball rolls down a ramp", "-o", str(out2), "--model", str(models / "teacher")])
    frames2, _ = read_video(out2)
    assert frames2.shape == frames.shape
    assert np.abs(frames2.astype(int) - frames.astype(int)).mean() < 2.0  # same seed, same video (codec noise only)


def test_missing_bundled_model_names_folder_and_recipe(tmp_path, monkeypatch):
    from mmphys_diffusers.assets import bundled_model_path

    monkeypatch.setenv("MMPHYS_BUNDLED_MODELS", str(tmp_path / "nothing"))
    with pytest.raises(MMPhysInputError) as err:
        bundled_model_path("student")
    message = str(err.value)
    assert str(tmp_path / "nothing" / "student") in message
    assert "train/recipes/mmphysvideo_tiny.py" in message
    with pytest.raises(MMPhysInputError, match="train/recipes/mmphysvideo_tiny.py"):
        _run(["a ball", "-o", str(tmp_path / "x.mp4"), "--teacher"])
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(MMPhysInputError, match="expected one of"):
        bundled_model_path("unknown")


def test_bundled_model_path_default_folder_and_override(models, monkeypatch):
    from mmphys_diffusers import assets

    monkeypatch.delenv("MMPHYS_BUNDLED_MODELS", raising=False)
    assert assets.bundled_models_dir() == assets.BUNDLED_MODELS_DIR
    assert assets.BUNDLED_MODELS_DIR.parent.name == "assets"
    monkeypatch.setenv("MMPHYS_BUNDLED_MODELS", str(models))
    assert assets.bundled_model_path("teacher") == models / "teacher"


def test_bad_arguments_fail_clearly(models, tmp_path):
    from mmphys_diffusers.cli.generate import parse_size

    assert parse_size("64") == (64, 64) and parse_size("48x80") == (48, 80) and parse_size(None) is None
    for bad in ("30", "64x", "big", "0x16"):
        with pytest.raises(MMPhysInputError, match="--size"):
            parse_size(bad)
    with pytest.raises(MMPhysInputError, match="expected an .mp4"):
        _run(["a ball", "-o", str(tmp_path / "x.gif"), "--model", str(models / "student")])
    with pytest.raises(MMPhysInputError, match="prompt is empty"):
        _run(["  ", "-o", str(tmp_path / "x.mp4"), "--model", str(models / "student")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(MMPhysInputError, match="no model_index.json"):
        _run(["a ball", "-o", str(tmp_path / "x.mp4"), "--model", str(tmp_path / "empty")])


def test_generate_warns_about_words_and_tokens_the_model_cannot_read(models, tmp_path, capsys):
    """Unknown words (word-level tokenizer) and tokens past the model's sequence length go to stderr."""
    from mmphys_diffusers.backbones import build_word_tokenizer, tiny_components
    from mmphys_diffusers.pipelines import MMPhysVideoPipeline

    word = build_word_tokenizer(["a red ball drops onto the floor."], model_max_length=8)
    comps = tiny_components("tiny-wan", seed=0, text_encoder={"vocab_size": len(word)})
    comps["tokenizer"] = word
    MMPhysVideoPipeline(**comps).save_pretrained(tmp_path / "word")
    (tmp_path / "word" / "mmphys_recipe.json").write_text(json.dumps(RECIPE))
    assert _run(["a red ball falls onto the floor", "-o", str(tmp_path / "w.mp4"), "--model", str(tmp_path / "word")]) == 0
    err = capsys.readouterr().err
    assert "read as <unk>: falls" in err and "tokens" not in err  # 7 words + eos fit in 8
    assert _run(["a red ball drops onto the floor", "-o", str(tmp_path / "w.mp4"), "--model", str(tmp_path / "word")]) == 0
    assert "warning" not in capsys.readouterr().err
    # the tiny config's byte tokenizer reads 16 tokens: 15 bytes and eos
    assert _run(["a red ball drops onto the floor", "-o", str(tmp_path / "b.mp4"), "--model", str(models / "student")]) == 0
    assert "the prompt has 32 tokens and the model reads 16; it sees only: 'a red ball drop'" in capsys.readouterr().err


def test_demo_generates_with_bundled_models(models, tmp_path, monkeypatch, capsys):
    from mmphys_diffusers.cli.main import main
    from mmphys_diffusers.utils.video_io import read_video

    monkeypatch.setenv("MMPHYS_BUNDLED_MODELS", str(models))
    assert main(["demo", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(tmp_path / "student.mp4")
    assert read_video(tmp_path / "student.mp4")[0].shape == (9, 32, 32, 3)
    teacher_frames, _ = read_video(tmp_path / "teacher_rgb_and_perception.mp4")
    assert teacher_frames.shape[0] == 9 and teacher_frames.shape[2] > 32  # RGB with perception panels beside it
    from PIL import Image

    # contact sheets: 6 frames side by side, each followed by a 2 px white gap
    assert Image.open(tmp_path / "student.png").size == (6 * (32 + 2), 32)
    assert Image.open(tmp_path / "teacher_rgb_and_perception.png").size[1] == 32


def test_demo_without_bundled_models_simulates(tmp_path, monkeypatch, capsys):
    from mmphys_diffusers.cli.main import main

    monkeypatch.setenv("MMPHYS_BUNDLED_MODELS", str(tmp_path / "empty"))
    assert main(["demo", "--out", str(tmp_path), "--size", "32", "--frames", "5"]) == 0
    out = capsys.readouterr().out
    assert "no bundled MMPhysVideo-Tiny weights" in out and out.strip().endswith("sim_free_fall_seed0.mp4")


def test_eval_loads_bundled_specs_and_teacher_folders_with_the_teacher_pipeline(models, tmp_path, monkeypatch, capsys):
    """`mmphys eval physics --model bundled:<kind>` (how the bundled table is reproduced): a teacher folder
    loads as MMPhysVideoTeacherPipeline and is scored on its RGB stream next to the student."""
    from mmphys_diffusers.cli import eval as eval_cli
    from mmphys_diffusers.evaluation import load_model
    from mmphys_diffusers.pipelines import MMPhysVideoPipeline, MMPhysVideoTeacherPipeline

    monkeypatch.setenv("MMPHYS_BUNDLED_MODELS", str(models))
    label, teacher = load_model("bundled:teacher")
    assert label == "teacher" and isinstance(teacher, MMPhysVideoTeacherPipeline)
    label, student = load_model("mine=" + str(models / "student"))
    assert label == "mine" and isinstance(student, MMPhysVideoPipeline) and not isinstance(student, MMPhysVideoTeacherPipeline)
    with pytest.raises(MMPhysInputError, match="bundled baseline model not found"):
        load_model("bundled:baseline")

    parser = argparse.ArgumentParser(prog="mmphys")
    eval_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", "physics", "--model", "bundled:student", "--model", "bundled:teacher", "--num-prompts", "1",
                              "--frames", "9", "--height", "32", "--width", "32", "--steps", "1", "--no-videos", "--out", str(tmp_path)])
    assert args.func(args) == 0
    assert "| student |" in capsys.readouterr().out
    assert set(json.loads((tmp_path / "results.json").read_text())["summary"]) == {"student", "teacher"}


def test_vae_ceiling_spec_round_trips_the_ground_truth_through_the_model_vae(models, monkeypatch):
    """`simulator@<model>`: held-out ground truth encoded and decoded by that model's VAE."""
    from mmphys_diffusers.evaluation import SimulatorModel, VAERoundTrip, heldout_scenes, load_model

    monkeypatch.setenv("MMPHYS_BUNDLED_MODELS", str(models))
    label, ceiling = load_model("vae_ceiling=simulator@bundled:student")
    assert label == "vae_ceiling" and isinstance(ceiling, SimulatorModel) and isinstance(ceiling.transform, VAERoundTrip)
    scene = heldout_scenes(1, families=["free_fall"], num_frames=9, height=32, width=32)[0]
    truth = SimulatorModel().render_heldout(scene, 0)
    through_vae = ceiling.render_heldout(scene, 0)
    assert through_vae.shape == truth.shape and through_vae.dtype == np.uint8
    # a random-weight VAE does not reproduce the clip; the transform really ran
    assert np.abs(through_vae.astype(int) - truth.astype(int)).mean() > 10
    with pytest.raises(MMPhysInputError, match="neither an existing folder"):
        load_model("simulator@nowhere")
