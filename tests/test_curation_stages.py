"""Curation stages on tiny synthetic clips: config, registry, ingest, schema, localiser, extractors vs ground truth, quality."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmphys_diffusers.curation import DEPTH_ESTIMATORS, LOCALIZERS, SEGMENTERS, TRACKERS, load_config
from mmphys_diffusers.curation.classical import box_iou, mask_box
from mmphys_diffusers.curation.config import CurationConfig, IngestConfig, QualityConfig
from mmphys_diffusers.curation.evaluate import instance_iou, scale_invariant_depth_error, track_error
from mmphys_diffusers.curation.ingest import Source, discover_sources, ingest_source, resample_indices, resize_frames
from mmphys_diffusers.curation.quality import judge, score_clip
from mmphys_diffusers.curation.schema import extract_json, validate_localization
from mmphys_diffusers.curation.synthetic import make_disc_clip
from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.utils.video_io import write_video


# -- config & registry -------------------------------------------------------------------
def test_config_json_and_toml_partial_sections(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"ingest": {"max_side": 96}, "depth": {"backend": "constant", "options": {"background": 5.0}}}))
    cfg = load_config(tmp_path / "c.json")
    assert cfg.ingest.max_side == 96 and cfg.ingest.target_fps == 8.0  # untouched keys keep defaults
    assert cfg.depth.backend == "constant" and cfg.depth.options == {"background": 5.0}
    (tmp_path / "c.toml").write_text('[localize]\nretries = 0\nfallback = "motion"\n[quality]\nmin_track_survival = 0.5\n')
    cfg = load_config(tmp_path / "c.toml")
    assert cfg.localize.retries == 0 and cfg.quality.min_track_survival == 0.5
    # A round trip through to_dict keeps everything.
    assert CurationConfig.from_dict(cfg.to_dict()) == cfg


def test_config_rejects_unknown_keys_and_bad_files(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"ingest": {"max_sidee": 96}}))
    with pytest.raises(MMPhysInputError, match=r"ingest: unknown key\(s\) \['max_sidee'\]"):
        load_config(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(MMPhysInputError, match="cannot parse config"):
        load_config(tmp_path / "broken.json")
    with pytest.raises(MMPhysInputError, match="config not found"):
        load_config(tmp_path / "missing.json")


def test_registry_names_and_errors():
    assert {"motion", "openai", "transformers_vlm"} <= set(LOCALIZERS.names())
    assert {"box_propagate", "sam2_video"} <= set(SEGMENTERS.names())
    assert {"ground_plane", "constant", "depth_anything"} <= set(DEPTH_ESTIMATORS.names())
    assert {"farneback", "dis"} <= set(TRACKERS.names())
    with pytest.raises(MMPhysInputError, match="unknown segment backend 'nope'"):
        SEGMENTERS.build("nope")
    with pytest.raises(MMPhysInputError, match="bad options"):
        TRACKERS.build("farneback", not_an_option=1)
    # "module:Class" loads an unregistered third-party backend.
    depth = DEPTH_ESTIMATORS.build("mmphys_diffusers.curation.extract.depth:ConstantDepth", background=3.0)
    assert depth.estimate(np.zeros((2, 4, 4, 3), np.uint8)).max() == 3.0


# -- ingest ------------------------------------------------------------------------------
def test_ingest_splits_scenes_resamples_resizes_and_filters(tmp_path):
    a = make_disc_clip(16, 50, 70, seed=1)["frames"]
    b = make_disc_clip(16, 50, 70, seed=2)["frames"]
    path = tmp_path / "two_scenes.mp4"
    write_video(path, np.concatenate([a, b]), fps=16)  # odd-free but not a multiple of 4; 32 frames at 16 fps
    cfg = IngestConfig(target_fps=8, max_side=48, size_multiple=4, min_frames=4, max_frames=49)
    segments, rejections = ingest_source(Source("two", str(path)), cfg)
    assert rejections == []
    assert [s.clip_id for s in segments] == ["two-s00c00", "two-s01c00"]
    for seg in segments:
        f, h, w, _ = seg.frames.shape
        assert f == 8 and seg.fps == 8.0  # 16 frames at 16 fps -> 8 frames at 8 fps
        assert max(h, w) <= 48 and h % 4 == 0 and w % 4 == 0
    assert segments[1].meta["source_frames"][0] == 16  # the cut is at the scene boundary

    # max_frames splits long scenes into chunks; the short remainder is dropped with a reason.
    segments, rejections = ingest_source(Source("two", str(path)), IngestConfig(target_fps=None, max_side=64, min_frames=6, max_frames=12))
    assert [s.frames.shape[0] for s in segments] == [12, 12]
    assert len(rejections) == 2 and all("too short" in r.reason for r in rejections)


def test_ingest_rejects_static_and_huge(tmp_path):
    static = tmp_path / "static.mp4"
    write_video(static, make_disc_clip(12, 32, 32, seed=0, static=True)["frames"], fps=8)
    segments, rejections = ingest_source(Source("s", str(static)), IngestConfig(min_frames=4))
    assert segments == [] and "static" in rejections[0].reason
    with pytest.raises(MMPhysInputError, match="exceeds reject_above_side=16"):
        ingest_source(Source("s", str(static)), IngestConfig(reject_above_side=16))


def test_resample_and_resize_helpers():
    assert list(resample_indices(8, 8.0, 8.0)) == list(range(8))
    assert list(resample_indices(30, 30.0, 10.0)) == list(range(0, 30, 3))
    frames = np.zeros((2, 101, 203, 3), np.uint8)
    out = resize_frames(frames, max_side=100, multiple=2)
    assert out.shape[1] % 2 == 0 and out.shape[2] % 2 == 0 and max(out.shape[1:3]) <= 100
    assert resize_frames(np.zeros((1, 20, 30, 3), np.uint8), 256).shape == (1, 20, 30, 3)  # never upscales


def test_discover_sources_kinds(tmp_path):
    frames = make_disc_clip(8, 32, 32, seed=0)["frames"]
    (tmp_path / "in" / "sub").mkdir(parents=True)
    write_video(tmp_path / "in" / "a.mp4", frames, fps=8)
    write_video(tmp_path / "in" / "sub" / "b.webm", frames, fps=8, codec="libvpx-vp9") if _has_vp9() else write_video(tmp_path / "in" / "sub" / "b.mov", frames, fps=8)
    from PIL import Image

    (tmp_path / "in" / "frames").mkdir()
    for i, fr in enumerate(frames):
        Image.fromarray(fr).save(tmp_path / "in" / "frames" / f"{i:03d}.png")
    found = discover_sources(tmp_path / "in")
    assert len(found) == 3 and len({s.key for s in found}) == 3
    # Keys are stable across runs (resume depends on it).
    assert [s.key for s in discover_sources(tmp_path / "in")] == [s.key for s in found]
    (tmp_path / "list.txt").write_text("in/a.mp4\n# comment\nin/frames\n")
    assert len(discover_sources(tmp_path / "list.txt")) == 2
    assert len(discover_sources(tmp_path / "in", limit=1)) == 1
    with pytest.raises(MMPhysInputError, match="INPUT not found"):
        discover_sources(tmp_path / "nothing")


def _has_vp9() -> bool:
    import av

    return "libvpx-vp9" in av.codecs_available


# -- schema ------------------------------------------------------------------------------
def _answer():
    return {
        "caption": "A ball falls.",
        "phenomenon": {"label": "falling", "evidence": [{"frame": 2, "subject_ids": [1], "observation": "lower than before"}]},
        "subjects": [{"id": 1, "name": "ball", "evidence": [{"frame": 0, "box": [30, 2, 10, 12]}, {"frame": 5, "box": [-4, 20, 12, 40]}]}],
    }


def test_schema_validates_and_normalises_boxes():
    out = validate_localization(_answer(), num_frames=8, height=32, width=32)
    assert out["subjects"][0]["evidence"][0]["box"] == [10.0, 2.0, 30.0, 12.0]  # reordered
    assert out["subjects"][0]["evidence"][1]["box"] == [0.0, 20.0, 12.0, 32.0]  # clamped to the frame
    fenced = "Here you go:\n```json\n" + json.dumps(_answer()) + "\n```"
    assert extract_json(fenced)["caption"] == "A ball falls."


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a["subjects"][0].pop("evidence"), "'evidence' is a required property"),
        (lambda a: a["subjects"][0].update(evidence=[]), "should be non-empty"),
        (lambda a: a["phenomenon"]["evidence"][0].update(frame=9), "cites frame 9, outside"),
        (lambda a: a["phenomenon"]["evidence"][0].update(subject_ids=[7]), "unknown subject id"),
        (lambda a: a["subjects"][0]["evidence"][0].update(box=[1, 2, 3]), "subjects/0/evidence/0/box"),
        (lambda a: a["subjects"][0]["evidence"][0].update(box=[40, 40, 50, 50]), "is empty inside"),
    ],
)
def test_schema_rejects_claims_without_valid_evidence(mutate, message):
    answer = _answer()
    mutate(answer)
    with pytest.raises(MMPhysInputError, match=message):
        validate_localization(answer, num_frames=8, height=32, width=32)


def test_extract_json_rejects_prose():
    with pytest.raises(MMPhysInputError, match="not JSON"):
        extract_json("a red ball bounces on the floor")


# -- localiser and extractors against ground truth ----------------------------------------
def _gt_box(instances: np.ndarray, k: int):
    return mask_box(instances == k)


def test_motion_localizer_finds_subjects_with_evidence():
    clip = make_disc_clip(16, 64, 64, seed=0)  # a dropped disc lands on a rolling one
    loc = LOCALIZERS.build("motion").localize(clip["frames"])
    assert len(loc["subjects"]) == 2
    assert loc["phenomenon"]["label"] == "colliding"
    names = sorted(s["name"] for s in loc["subjects"])
    assert names == ["blue object", "red object"]
    # Evidence boxes sit on the true objects.
    ious = []
    for s in loc["subjects"]:
        for ev in s["evidence"]:
            gt_ids, counts = np.unique(clip["instances"][ev["frame"]][int(ev["box"][1]) : int(ev["box"][3]), int(ev["box"][0]) : int(ev["box"][2])], return_counts=True)
            k = int(gt_ids[np.argmax(np.where(gt_ids > 0, counts, -1))])
            ious.append(box_iou(ev["box"], _gt_box(clip["instances"][ev["frame"]], k)))
    assert np.median(ious) > 0.7


def test_motion_localizer_static_clip_has_no_subjects():
    clip = make_disc_clip(8, 32, 32, seed=0, static=True)
    loc = LOCALIZERS.build("motion").localize(clip["frames"])
    assert loc["subjects"] == [] and loc["phenomenon"]["label"] == "other"


def _simulated_clips():
    try:
        from mmphys_diffusers.simulation import simulate_clip
    except ImportError:  # pragma: no cover - the simulator ships with the package
        return [make_disc_clip(16, 64, 64, seed=s) for s in range(3)]
    out = []
    for family, seed in (("free_fall", 1), ("projectile", 0), ("collision", 1), ("ramp", 1)):
        c = simulate_clip(family, seed=seed)
        out.append({"frames": c.rgb, **{k: v for k, v in c.cues.items()}})
    return out


def test_classical_extractors_against_simulator_ground_truth():
    """Default extractors scored on exact ground truth; figures are recorded in docs/curation.md."""
    loc_b, seg_b = LOCALIZERS.build("motion"), SEGMENTERS.build("box_propagate")
    trk_b, depth_b, const_b = TRACKERS.build("farneback"), DEPTH_ESTIMATORS.build("ground_plane"), DEPTH_ESTIMATORS.build("constant")
    ious, epes, coverages, silog, silog_const = [], [], [], [], []
    for clip in _simulated_clips():
        frames, gt_inst = clip["frames"], clip["instances"].astype(np.int32)
        loc = loc_b.localize(frames)
        inst = seg_b.segment(frames, loc)
        assert inst.shape == gt_inst.shape and inst.dtype == np.int32
        tracks = trk_b.track(frames)
        assert tracks["tracks"].shape == clip["tracks"].shape and tracks["visibility"].dtype == bool
        depth = depth_b.estimate(frames, inst)
        assert depth.shape == clip["depth"].shape and (depth > 0).all()
        ious.append(instance_iou(inst, gt_inst)["mean_iou"])
        te = track_error(tracks["tracks"], tracks["visibility"], clip["tracks"], clip["visibility"])
        epes.append(te["epe"])
        coverages.append(te["coverage"])
        silog.append(scale_invariant_depth_error(depth, clip["depth"])["silog"])
        silog_const.append(scale_invariant_depth_error(const_b.estimate(frames, inst), clip["depth"])["silog"])
    assert np.mean(ious) > 0.6, ious
    assert np.mean(epes) < 3.5 and np.mean(coverages) > 0.5, (epes, coverages)
    # The ground-plane prior is weak but clearly better than a flat scene.
    assert np.mean(silog) < 0.25 and np.mean(silog) < 0.6 * np.mean(silog_const), (silog, silog_const)


def test_metrics_are_exact_on_ground_truth():
    clip = make_disc_clip(8, 32, 32, seed=3)
    assert instance_iou(clip["instances"], clip["instances"])["mean_iou"] == 1.0
    assert scale_invariant_depth_error(3.0 * clip["depth"], clip["depth"])["silog"] < 1e-6  # scale-free
    te = track_error(clip["tracks"], clip["visibility"], clip["tracks"], clip["visibility"])
    assert te["epe"] == 0.0 and te["coverage"] == 1.0 and te["visibility_accuracy"] == 1.0


def test_tracker_recovers_translation_and_flags_occlusion():
    clip = make_disc_clip(10, 48, 48, seed=4)
    out = TRACKERS.build("dis", preset="medium").track(clip["frames"])
    assert out["flow"].shape == (10, 48, 48, 2) and np.all(out["flow"][-1] == 0)
    te = track_error(out["tracks"], out["visibility"], clip["tracks"], clip["visibility"])
    assert te["epe"] < 3.0
    with pytest.raises(MMPhysInputError, match="preset"):
        TRACKERS.build("dis", preset="warp")


# -- quality -----------------------------------------------------------------------------
def test_quality_accepts_good_and_rejects_bad_clips():
    clip = make_disc_clip(12, 48, 48, seed=1)
    frames = clip["frames"]
    loc = LOCALIZERS.build("motion").localize(frames)
    inst = SEGMENTERS.build("box_propagate").segment(frames, loc)
    tracks = TRACKERS.build("farneback").track(frames)
    depth = DEPTH_ESTIMATORS.build("ground_plane").estimate(frames, inst)
    good = score_clip(loc, inst, depth, tracks)
    assert judge(good, QualityConfig()) == [], good
    # Flickering masks, flickering depth and lost tracks are each named.
    rng = np.random.default_rng(0)
    noisy_inst = np.where(rng.random(inst.shape) < 0.5, inst, 0).astype(np.int32)
    noisy_depth = depth * rng.uniform(0.3, 3.0, size=(len(depth), 1, 1)).astype(np.float32)
    lost = dict(tracks, visibility=np.zeros_like(tracks["visibility"]))
    lost["visibility"][0] = True
    reasons = judge(score_clip(loc, noisy_inst, noisy_depth, lost), QualityConfig())
    text = " ".join(reasons)
    assert "unstable masks" in text and "inconsistent depth" in text and "tracks lost" in text
    empty = {"phenomenon": loc["phenomenon"], "subjects": []}
    assert any("no physical subject" in r for r in judge(score_clip(empty, np.zeros_like(inst), depth, tracks), QualityConfig()))


def test_example_configs_load():
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples"
    default = load_config(examples / "curation_config.json")
    assert default == CurationConfig()  # the example documents the defaults exactly
    models = load_config(examples / "curation_config_models.json")
    assert models.localize.backend == "openai" and models.segment.backend == "sam2_video" and models.depth.backend == "depth_anything"
    for stage, registry in ((models.segment, SEGMENTERS), (models.depth, DEPTH_ESTIMATORS), (models.tracks, TRACKERS)):
        assert stage.backend in registry
