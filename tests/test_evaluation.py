"""Evaluation harness: metrics are right on simulator ground truth and flag corrupted clips."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.evaluation import (
    SIMULATOR_MODEL,
    SceneInfo,
    VideoFeatureNet,
    bootstrap_ci,
    check_judge,
    evaluate_video,
    frechet_distance,
    heldout_scenes,
    motion_iou_metrics,
    motion_masks,
    parse_objects,
    parse_prompt,
    read_prompts_file,
    run_physics_benchmark,
    text_adherence,
    train_feature_network,
)
from mmphys_diffusers.evaluation import corruptions as C
from mmphys_diffusers.evaluation.evaluate import visible_objects
from mmphys_diffusers.evaluation.features import VideoFeatureNetConfig
from mmphys_diffusers.simulation import simulate_clip

_CACHE: dict = {}


def sim(family: str, seed: int):
    """Simulated clip + its SceneInfo (cached: several tests use the same clips)."""
    key = (family, seed)
    if key not in _CACHE:
        clip = simulate_clip(family, seed)
        _CACHE[key] = (clip, SceneInfo.from_meta(clip.meta, caption=clip.caption))
    return _CACHE[key]


def scores(frames, scene, **kw):
    out = evaluate_video(frames, scene, **kw)
    out.pop("details")
    return out


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("family,seed", [("free_fall", 0), ("projectile", 1), ("collision", 3)])
def test_parser_finds_objects_where_the_simulator_put_them(family, seed):
    clip, scene = sim(family, seed)
    tracks = parse_objects(clip.rgb, scene)
    inst = clip.cues["instances"]
    assert tracks.present.shape == (17, len(scene.objects))
    for i, obj in enumerate(scene.objects):
        visible_px = (inst == i + 1).sum((1, 2))
        fully = tracks.fully_visible()[:, i]
        # Found whenever most of it is visible, never when it is not visible at all.
        assert tracks.present[visible_px >= 0.8 * visible_px.max(), i].all()
        assert not tracks.present[visible_px == 0, i].any()
        centre = tracks.circle_center if obj.kind == "ball" else tracks.centroid
        err = np.linalg.norm(centre[fully, i] - scene.gt_centers_px[fully, i], axis=-1)
        assert err.max() < 0.6, err.max()
        if obj.kind == "ball":
            assert abs(np.median(tracks.circle_radius[fully, i]) - obj.radius_px) < 0.7


def test_parser_survives_blur_and_noise():
    clip, scene = sim("free_fall", 1)
    import cv2

    rng = np.random.default_rng(0)
    blurred = np.stack([cv2.GaussianBlur(f, (3, 3), 0.8) for f in clip.rgb]).astype(np.float64)
    noisy = np.clip(blurred + rng.normal(0, 4, blurred.shape), 0, 255).astype(np.uint8)
    tracks = parse_objects(noisy, scene)
    assert tracks.present.all()
    err = np.linalg.norm(tracks.circle_center[:, 0] - scene.gt_centers_px[:, 0], axis=-1)
    assert err.max() < 1.0


# --------------------------------------------------------------------------- metrics on ground truth


def test_gravity_fit_matches_the_scene_gravity():
    errors = []
    for family, seed in [("free_fall", 0), ("free_fall", 3), ("free_fall", 5), ("projectile", 1), ("projectile", 3)]:
        clip, scene = sim(family, seed)
        s = scores(clip.rgb, scene)
        assert s["g_rel_error"] is not None and s["g_rel_error"] < 0.04, (family, seed, s["g_fit_m_s2"])
        assert s["parabola_rms_px"] < 0.2
        errors.append(s["g_rel_error"])
    assert np.mean(errors) < 0.025


def test_ground_truth_is_clean_on_every_family():
    for family, seed in [("free_fall", 0), ("projectile", 2), ("collision", 1), ("ramp", 1), ("ramp", 3), ("multi_object", 1)]:
        clip, scene = sim(family, seed)
        s = scores(clip.rgb, scene, reference=clip.rgb)
        assert s["permanence"] == 1.0 and s["vanish_events"] == 0 and s["appear_events"] == 0, (family, seed)
        assert s["penetration_px"] is not None and s["penetration_px"] < 1.0, (family, seed, s["penetration_px"])
        assert s["text_adherence"] == 1.0, (family, seed, clip.caption)
        assert s["spatial_iou"] == s["spatiotemporal_iou"] == s["weighted_spatial_iou"] == 1.0 and s["mse"] == 0.0
        if s["restitution_max"] is not None:
            assert s["restitution_max"] <= 1.0 and s["restitution_violation"] == 0.0


def test_restitution_matches_the_scene():
    for family, seed in [("free_fall", 0), ("free_fall", 5), ("projectile", 2)]:
        clip, scene = sim(family, seed)
        s = evaluate_video(clip.rgb, scene)
        bounce = s["details"]["bounce"]
        assert bounce["num_bounces"] >= 1
        assert bounce["rel_error"] < 0.03, (family, seed, bounce)
        assert bounce["restitution_max"] <= 1.0


def test_ramp_acceleration_matches_gravity_and_friction():
    for seed in (0, 1, 5):  # box, ball, nearly frictionless box
        clip, scene = sim("ramp", seed)
        s = scores(clip.rgb, scene)
        assert s["ramp_accel_rel_error"] is not None and s["ramp_accel_rel_error"] < 0.03, (seed, s["ramp_accel_rel_error"])
    clip, scene = sim("ramp", 1)
    # Played twice as fast (every other frame at the same fps): 4x the acceleration.
    assert scores(clip.rgb[::2], scene)["ramp_accel_rel_error"] > 2.0
    # Frozen on the slope: no acceleration at all.
    assert scores(np.repeat(clip.rgb[:1], 17, axis=0), scene)["ramp_accel_rel_error"] > 0.9


def test_momentum_is_conserved_in_collision_clips():
    measured = 0
    for seed in range(1, 6):
        clip, scene = sim("collision", seed)
        s = scores(clip.rgb, scene)
        if s["momentum_rel_change"] is not None:
            measured += 1
            assert s["momentum_rel_change"] < 0.05, (seed, s["momentum_rel_change"])
    assert measured >= 4


# --------------------------------------------------------------------------- corrupted clips are flagged


def test_removed_object_breaks_permanence():
    clip, scene = sim("free_fall", 1)
    broken = C.remove_object(clip.rgb, clip.cues["instances"], 1, range(5, 9))
    s = scores(broken, scene)
    assert s["permanence"] == pytest.approx(13 / 17)
    assert s["vanish_events"] == 1 and s["appear_events"] == 1


def test_flipped_gravity_gives_a_wrong_g_and_reversal_gains_energy():
    clip, scene = sim("free_fall", 3)
    flipped = scores(C.flip_vertically(clip.rgb), scene)
    assert flipped["g_fit_m_s2"] < 0 and flipped["g_rel_error"] > 1.5
    reversed_ = scores(C.time_reverse(clip.rgb), scene)
    # A parabola is time-symmetric (g is unchanged); the bounces now gain energy.
    assert reversed_["restitution_max"] > 1.1 and reversed_["restitution_violation"] == 1.0


def test_object_pushed_into_the_floor_penetrates():
    clip, scene = sim("free_fall", 3)
    obj = scene.objects[0]
    bottom = scene.gt_centers_px[:, 0, 1] + obj.radius_px
    near_floor = np.flatnonzero(bottom > obj.floor_row_px - 3)
    assert near_floor.size
    offsets = np.zeros((17, 2))
    offsets[near_floor, 1] = 4
    s = scores(C.shift_object(clip.rgb, clip.cues["instances"], 1, offsets), scene)
    assert s["penetration_px"] > 2.5


def test_bounce_replayed_with_more_energy_has_restitution_above_one():
    clip, scene = sim("free_fall", 1)
    obj = scene.objects[0]
    impact_s = next(e["time_s"] for e in clip.meta["events"] if e["type"] == "bounce")
    first_after_bounce = int(np.ceil(impact_s * scene.fps))
    args = (clip.rgb, clip.cues["instances"], 1, scene.gt_centers_px[:, 0], obj.floor_row_px - obj.radius_px,
            scene.gravity_px_s2(0) / scene.fps**2, first_after_bounce)
    # Replaying with the scene's own restitution keeps the metrics clean (the corruption is faithful)...
    same = evaluate_video(C.rebounce(*args, obj.restitution), scene)["details"]["bounce"]
    assert same["num_bounces"] >= 1 and same["rel_error"] < 0.05
    # ...and with e = 1.3 the bounce gains energy.
    s = scores(C.rebounce(*args, 1.3), scene)
    assert s["restitution_max"] > 1.15 and s["restitution_violation"] == 1.0
    assert s["g_rel_error"] < 0.05  # gravity itself was left alone


# --------------------------------------------------------------------------- motion, text, features


def test_motion_iou_self_is_perfect_and_other_scene_is_not():
    clip, _ = sim("free_fall", 1)
    other, _ = sim("projectile", 1)
    masks = motion_masks(clip.rgb)
    assert not masks[0].any() and masks[1:].any()
    assert motion_iou_metrics(clip.rgb, clip.rgb) == {"spatial_iou": 1.0, "spatiotemporal_iou": 1.0, "weighted_spatial_iou": 1.0, "mse": 0.0}
    diff = motion_iou_metrics(clip.rgb, other.rgb)
    assert diff["spatiotemporal_iou"] < 0.5 and diff["mse"] > 0
    with pytest.raises(MMPhysInputError, match="equal shape"):
        motion_iou_metrics(clip.rgb, other.rgb[:5])


def test_text_adherence_detects_wrong_colour_and_count():
    clip, _ = sim("free_fall", 0)  # two balls
    assert parse_prompt(clip.caption)["count"] == 2
    good = text_adherence(clip.rgb, clip.caption)
    assert good["adherence"] == 1.0
    used = set(good["expected"]["colours"])
    wrong = next(c for c in ("red", "green", "blue", "yellow", "purple") if c not in used)
    bad_colour = text_adherence(clip.rgb, f"A {wrong} ball and a {sorted(used)[0]} ball drop onto the floor.")
    assert bad_colour["colour_recall"] == 0.5 and bad_colour["adherence"] < 1.0
    bad_count = text_adherence(clip.rgb, "Three balls drop onto the floor.")
    assert bad_count["count_match"] == 0.0
    assert parse_prompt("Five objects (three balls and two boxes) fall onto the floor: a red box")["count"] == 5
    assert parse_prompt("Two boxes collide: a red box slides into a blue box")["count"] == 2


def test_frechet_distance_zero_for_identical_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # Closed form for independent Gaussians: |dmu|^2 + sum (sigma_a - sigma_b)^2.
    b = rng.normal(size=(400, 4)) * 2.0 + 1.0
    expected = frechet_distance(a, a * 2.0 + 1.0)
    assert expected == pytest.approx(4 * 1.0 + 4 * (2.0 - 1.0) ** 2 * np.var(a, axis=0, ddof=1).mean(), rel=0.05)
    small, large = frechet_distance(a, a + 0.1), frechet_distance(a, a + 1.0)
    assert 0 < small < large and frechet_distance(a, b) > 1.0
    with pytest.raises(MMPhysInputError):
        frechet_distance(a, a[:, :3])


def test_feature_network_trains_saves_and_separates_distributions(tmp_path):
    videos, labels, names = [], [], ["free_fall", "collision"]
    for seed in range(6):
        for k, family in enumerate(names):
            videos.append(sim(family, seed)[0].rgb if seed < 3 else simulate_clip(family, 100 + seed).rgb)
            labels.append(k)
    cfg = VideoFeatureNetConfig(num_frames=4, size=16, channels=(4, 8), feature_dim=8)
    net, history = train_feature_network(videos, labels, names, epochs=2, batch_size=6, config=cfg, progress=False)
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    net.save_pretrained(tmp_path / "fnet")
    loaded = VideoFeatureNet.from_pretrained(tmp_path / "fnet")
    feats = net.extract_features(videos)
    np.testing.assert_allclose(loaded.extract_features(videos), feats, rtol=1e-5, atol=1e-6)
    assert loaded.config.class_names == names
    ff, col = feats[np.array(labels) == 0], feats[np.array(labels) == 1]
    dark = [(v * 0.3).astype(np.uint8) for v in videos[::2]]
    assert frechet_distance(ff, net.extract_features(dark)) > frechet_distance(ff, ff) + 1e-6
    with pytest.raises(MMPhysInputError, match="feature_net_config.json"):
        VideoFeatureNet.from_pretrained(tmp_path / "missing")
    assert col.shape == ff.shape


# --------------------------------------------------------------------------- runner and CLI


def test_bootstrap_ci_brackets_the_mean():
    mean, lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 100.0], num_resamples=2000)
    assert mean == pytest.approx(22.0) and lo < mean < hi
    assert bootstrap_ci([5.0]) == (5.0, 5.0, 5.0)
    assert np.isnan(bootstrap_ci([])[0])


def test_runner_end_to_end_with_simulator_and_a_tiny_pipeline(tmp_path):
    from mmphys_diffusers.backbones import load_base_pipeline
    from mmphys_diffusers.pipelines import MMPhysVideoPipeline

    pipe = load_base_pipeline("tiny-cogvideox", pipeline_class=MMPhysVideoPipeline)
    pipe.set_progress_bar_config(disable=True)
    scenes = heldout_scenes(3, families=["free_fall", "collision", "projectile"], exclude_seeds=())
    assert len({s.seed for s in scenes}) == 3
    # Held-out seeds can be excluded explicitly (e.g. those of a training manifest).
    assert scenes[0].seed not in {s.seed for s in heldout_scenes(1, families=["free_fall"], exclude_seeds=[scenes[0].seed])}
    results = run_physics_benchmark(
        {"tiny": pipe, "gt": SIMULATOR_MODEL}, tmp_path, scenes=scenes[:1] + scenes[1:], seeds=(0, 1),
        num_inference_steps=1, num_bootstrap=200, progress=False,
    )
    data = json.loads((tmp_path / "results.json").read_text())
    table = (tmp_path / "results.md").read_text()
    assert set(data["summary"]) == {"tiny", "gt"} and len(data["per_video"]) == 2 * 3 * 2
    gt = data["summary"]["gt"]
    assert gt["permanence"]["mean"] == 1.0 and gt["text_adherence"]["mean"] == 1.0
    assert gt["spatiotemporal_iou"]["mean"] == 1.0 and gt["g_rel_error"]["mean"] < 0.04
    assert gt["permanence"]["ci95"] == [1.0, 1.0]
    # An untrained model draws no coloured objects: permanence and text adherence collapse.
    assert data["summary"]["tiny"]["permanence"]["mean"] < 0.5
    assert "| gt |" in table and "| tiny |" in table and "not comparable to published FVD" in table
    assert len(list((tmp_path / "videos" / "tiny").glob("*.mp4"))) == 6
    assert results["config"]["heldout_scene_seeds"] == [s.seed for s in scenes]


def _eval_parser():
    from mmphys_diffusers.cli import eval as eval_cli

    parser = argparse.ArgumentParser(prog="mmphys")
    eval_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_physics_with_simulator(tmp_path, capsys):
    args = _eval_parser().parse_args(
        ["eval", "physics", "--model", "gt=simulator", "--num-prompts", "2", "--families", "free_fall", "--no-videos", "--out", str(tmp_path)]
    )
    assert args.func(args) == 0
    assert "| gt |" in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["config"]["num_prompts"] == 2


def test_public_benchmarks_say_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path))  # check_judge points VBench at --judge-path
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# comment\nA ball bounces on a table.\n\nA cup falls over.\n")
    assert read_prompts_file(prompts) == ["A ball bounces on a table.", "A cup falls over."]
    (tmp_path / "p.csv").write_text("videopath,caption\nx.mp4,A glass breaks\n")
    assert read_prompts_file(tmp_path / "p.csv") == ["A glass breaks"]
    with pytest.raises(MMPhysInputError, match="videocon_physics"):
        check_judge("videophy", None)
    empty = tmp_path / "judge"
    empty.mkdir()
    with pytest.raises(MMPhysInputError, match="no weight files"):
        check_judge("videophy", empty)
    (empty / "pytorch_model.bin").write_bytes(b"0")
    with pytest.raises(MMPhysInputError, match="judge-repo"):
        check_judge("videophy", empty)
    with pytest.raises(MMPhysInputError, match="vbench"):
        check_judge("vbench", empty)
    with pytest.raises(MMPhysInputError, match="unknown public benchmark"):
        check_judge("physbench", empty)
    # Through the CLI: the error comes before any model is loaded.
    args = _eval_parser().parse_args(["eval", "videophy", "--model", "some/model", "--prompts-file", str(prompts), "--out", str(tmp_path / "o")])
    with pytest.raises(MMPhysInputError, match="git clone https://huggingface.co/videophysics/videocon_physics"):
        args.func(args)


def test_bad_inputs_name_the_problem():
    clip, scene = sim("free_fall", 1)
    with pytest.raises(MMPhysInputError, match="scene geometry"):
        evaluate_video(clip.rgb[:, :32, :32], scene)
    with pytest.raises(MMPhysInputError, match="objects"):
        SceneInfo.from_meta({"fps": 8.0})
    with pytest.raises(MMPhysInputError, match="unknown colour"):
        SceneInfo.from_colours(["mauve"], fps=8.0, height=64, width=64)
    with pytest.raises(MMPhysInputError, match="num_prompts"):
        heldout_scenes(0)
    with pytest.raises(MMPhysInputError, match="unknown scene family"):
        heldout_scenes(1, families=["explosion"])
    tracks = parse_objects(clip.rgb, scene)
    assert visible_objects(tracks).tolist() == [0]
    from mmphys_diffusers.evaluation import load_model

    with pytest.raises(MMPhysInputError, match="neither an existing folder"):
        load_model("not-a-model")
    assert load_model("ref=simulator") == ("ref", SIMULATOR_MODEL)


def test_runner_ranks_negative_controls_below_the_simulator(tmp_path):
    from mmphys_diffusers.evaluation import SimulatorModel, flip_vertically

    scenes = heldout_scenes(2, families=["free_fall"])
    models = {
        "gt": SimulatorModel(),
        "flipped": SimulatorModel(flip_vertically),
        "frozen": SimulatorModel(lambda v: np.repeat(v[:1], len(v), axis=0)),
    }
    summary = run_physics_benchmark(models, tmp_path, scenes=scenes, seeds=(0,), save_videos=False, progress=False)["summary"]
    assert summary["gt"]["g_rel_error"]["mean"] < 0.04
    assert summary["flipped"]["g_rel_error"]["mean"] > 1.5
    assert summary["frozen"]["spatiotemporal_iou"]["mean"] < 0.5 < summary["gt"]["spatiotemporal_iou"]["mean"]
    # A ball hanging still in mid-air has a fitted g of 0: a 100% error.
    assert summary["frozen"]["g_rel_error"]["n"] >= 1 and summary["frozen"]["g_rel_error"]["mean"] > 0.9


def test_dataset_scoring_after_h264_round_trip(tmp_path, capsys):
    from mmphys_diffusers.simulation import generate_dataset

    generate_dataset(tmp_path / "ds", num_clips=5, num_frames=17, size=64, seed=3, progress=False)
    args = _eval_parser().parse_args(["eval", "dataset", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "scores.json")])
    assert args.func(args) == 0
    data = json.loads((tmp_path / "scores.json").read_text())
    assert len(data["per_clip"]) == 5 and set(data["per_family"]) == {"free_fall", "projectile", "collision", "ramp", "multi_object"}
    by_family = {row["family"]: row for row in data["per_clip"]}
    # The simulator's own clips, decoded from H.264 (crf 18), still pass.
    assert by_family["free_fall"]["g_rel_error"] < 0.05
    assert by_family["ramp"]["ramp_accel_rel_error"] < 0.05
    assert by_family["collision"]["momentum_rel_change"] < 0.05
    assert all(row["penetration_px"] < 1.0 and row["text_adherence"] == 1.0 for row in data["per_clip"])
    assert data["summary"]["permanence"]["mean"] > 0.9


def test_paired_comparison_pairs_videos_by_prompt_and_seed(tmp_path, capsys):
    from mmphys_diffusers.evaluation import format_paired_comparison, paired_comparison

    rng = np.random.default_rng(0)
    rows = []
    for scene in range(20):
        base = rng.uniform(0, 1)  # prompt difficulty varies a lot, the paired gap does not
        for seed in (0, 1):
            noise = rng.normal(0, 0.5)  # a lower-is-better metric whose paired gap straddles 0
            rows.append({"model": "ref", "scene": f"s{scene}", "seed": seed, "permanence": base, "mse": base, "g_rel_error": None,
                         "penetration_px": base, "vanish_events": 1.0})
            rows.append({"model": "new", "scene": f"s{scene}", "seed": seed, "permanence": base + 0.05, "mse": base, "g_rel_error": 0.1,
                         "penetration_px": base - 0.2, "vanish_events": 1.0 + noise})
    results = {"per_video": rows}
    comp = paired_comparison(results, "new", "ref", num_bootstrap=200)
    assert comp["permanence"]["verdict"] == "better" and comp["permanence"]["n"] == 40
    assert comp["permanence"]["difference"] == pytest.approx(0.05)
    assert comp["mse"]["verdict"] == "no difference"
    assert comp["penetration_px"]["verdict"] == "better"  # lower is better, and it is lower
    low, high = comp["vanish_events"]["ci95"]
    assert low < 0 < high and comp["vanish_events"]["verdict"] == "no difference"
    assert "g_rel_error" not in comp  # no pair where both are defined
    reverse = paired_comparison(results, "ref", "new", num_bootstrap=200)
    assert reverse["permanence"]["verdict"] == "worse" and reverse["penetration_px"]["verdict"] == "worse"
    assert reverse["vanish_events"]["verdict"] == "no difference"
    assert "| permanence (↑) | " in format_paired_comparison(comp, "new", "ref")
    with pytest.raises(MMPhysInputError, match="not in these results"):
        paired_comparison(results, "nope", "ref")
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    args = _eval_parser().parse_args(["eval", "compare", str(path), "--model", "new", "--reference", "ref", "--out", str(tmp_path / "c.json")])
    assert args.func(args) == 0
    assert "better" in capsys.readouterr().out
    assert json.loads((tmp_path / "c.json").read_text())["metrics"]["permanence"]["verdict"] == "better"


def test_heldout_scenes_do_not_depend_on_the_order_families_are_listed():
    """The recipe lists its families in its own order, `mmphys eval` in SCENE_FAMILIES order: same scenes."""
    a = heldout_scenes(4, families=["free_fall", "projectile", "ramp", "collision"], num_frames=9, height=32, width=32)
    b = heldout_scenes(4, families=["collision", "ramp", "projectile", "free_fall"], num_frames=9, height=32, width=32)
    assert [(s.family, s.seed) for s in a] == [(s.family, s.seed) for s in b]


def test_object_size_error_flags_an_object_drawn_too_large_that_permanence_misses():
    clip, scene = sim("free_fall", 1)
    same = scores(clip.rgb, scene, reference=clip.rgb)
    assert same["object_size_error"] == pytest.approx(0.0, abs=1e-9) and same["object_size_ratio"] == pytest.approx(1.0)
    bigger = scores(C.enlarge_object(clip.rgb, clip.cues["instances"], 1, 3), scene, reference=clip.rgb)
    assert bigger["object_size_ratio"] > 1.5 and bigger["object_size_error"] > 0.4
    assert bigger["permanence"] == same["permanence"] == 1.0  # the count metrics do not see it
    with pytest.raises(MMPhysInputError, match="grow_px"):
        C.enlarge_object(clip.rgb, clip.cues["instances"], 1, 0)


def test_pool_training_seeds_averages_per_video_before_bootstrapping():
    """benchmarks/pool_training_seeds.py: per-video differences are averaged over the training seeds, and
    only videos present in every file count."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "pool_training_seeds.py"
    spec = importlib.util.spec_from_file_location("pool_training_seeds", path)
    pool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pool)

    def results(gains, scenes):
        rows = []
        for scene, gain in zip(scenes, gains):
            rows.append({"model": "ref", "scene": scene, "seed": 0, "permanence": 0.5})
            rows.append({"model": "new", "scene": scene, "seed": 0, "permanence": 0.5 + gain})
        return {"per_video": rows}

    first = results([0.1, 0.3, 0.2], ["a", "b", "c"])
    second = results([0.3, 0.1, 0.9], ["a", "b", "d"])  # "c" and "d" are not in both
    pooled = pool.pooled_difference([first, second], "new", "ref", "permanence")
    assert pooled["n_videos"] == 2
    assert pooled["difference"] == pytest.approx(0.2)  # mean of (0.1+0.3)/2 and (0.3+0.1)/2
    assert pooled["per_training_seed"] == pytest.approx([0.2, 0.2])
    assert pooled["ci95"][0] == pytest.approx(0.2) and pooled["ci95"][1] == pytest.approx(0.2)
    with pytest.raises(MMPhysInputError, match="no video with 'permanence' for both 'new' and 'other'"):
        pool.pooled_difference([first], "new", "other", "permanence")
