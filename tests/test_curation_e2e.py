"""End to end: `mmphys curate` on a folder of simulated clips mixed with broken files; resume; executors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from mmphys_diffusers.cli import curate as curate_cli
from mmphys_diffusers.curation import CurationConfig, run_curation
from mmphys_diffusers.curation.pipeline import REPORT_NAME, SUMMARY_NAME
from mmphys_diffusers.curation.synthetic import make_disc_clip
from mmphys_diffusers.data.manifest import CUE_ARRAYS, MANIFEST_NAME, load_cue_arrays, read_manifest
from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.utils.video_io import write_video

GOOD = (("free_fall", 1), ("projectile", 0), ("collision", 1))


def _clip_frames(family: str, seed: int) -> np.ndarray:
    try:
        from mmphys_diffusers.simulation import simulate_clip
    except ImportError:  # pragma: no cover
        return make_disc_clip(16, 64, 64, seed=seed)["frames"]
    return simulate_clip(family, seed=seed).rgb


def make_input_folder(root: Path, good=GOOD) -> Path:
    src = root / "incoming"
    for family, seed in good:
        write_video(src / family / f"seed{seed}.mp4", _clip_frames(family, seed), fps=8)
    write_video(src / "static.mp4", make_disc_clip(12, 64, 64, seed=0, static=True)["frames"], fps=8)
    (src / "zero_length.mp4").write_bytes(b"")
    (src / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (src / "notes.mp4").write_text("this is a text file, not a video\n")
    return src


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mmphys")
    curate_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def _report(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / REPORT_NAME).read_text().splitlines()]


def test_curate_cli_end_to_end_with_broken_inputs_and_resume(tmp_path, capsys):
    src = make_input_folder(tmp_path)
    out = tmp_path / "dataset"
    assert _cli(["curate", str(src), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "curated" in printed and "3 clip(s) in the manifest" in printed

    records = read_manifest(out)
    assert len(records) == 3
    for r in records:
        assert (out / r.rgb).is_file() and r.num_frames >= 8 and r.height % 2 == 0 and r.width % 2 == 0
        arrays = load_cue_arrays(out, r)
        assert set(arrays) == {"instances", "depth", "tracks", "visibility", "flow"} <= set(CUE_ARRAYS)
        assert arrays["instances"].max() >= 1 and arrays["tracks"].shape == (r.num_frames, r.height, r.width, 2)
        assert r.caption and r.meta["phenomenon"] and r.meta["quality"]["num_subjects"] >= 1
        loc = json.loads((out / r.meta["localization"]).read_text())
        assert loc["subjects"] and loc["subjects"][0]["evidence"]
    info = json.loads((out / "dataset.json").read_text())
    assert info["producer"] == "mmphys curate" and info["format_version"] == 1

    # Every broken input is in the report with a reason; nothing failed unexpectedly.
    report = _report(out)
    by_path = {Path(e["path"]).name: e for e in report if e["type"] == "source"}
    assert by_path["zero_length.mp4"]["status"] == "rejected" and "empty (0 bytes)" in by_path["zero_length.mp4"]["reason"]
    assert by_path["garbage.mp4"]["status"] == "rejected" and "cannot read video" in by_path["garbage.mp4"]["reason"]
    assert by_path["notes.mp4"]["status"] == "rejected"
    static_clips = [e for e in report if e["type"] == "clip" and e["source"] == by_path["static.mp4"]["source"]]
    assert static_clips[0]["status"] == "rejected" and "static" in static_clips[0]["reasons"][0]
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert summary["clips"] == {"total": 4, "accepted": 3, "rejected": 1}
    assert summary["sources"] == {"total": 7, "done": 4, "rejected": 3}
    assert summary["this_run"]["sources_processed"] == 7

    # The dataset loads for training.
    dataset_mod = pytest.importorskip("mmphys_diffusers.data.dataset")
    ds = dataset_mod.MMPhysVideoDataset(out, cues=("unified",), num_frames=8, height=32, width=32)
    item = ds[0]
    assert tuple(item["rgb"].shape) == (8, 3, 32, 32) and tuple(item["perception"]["unified"].shape) == (8, 3, 32, 32)

    # Resume: nothing is redone, nothing is rewritten.
    manifest_before = (out / MANIFEST_NAME).read_bytes()
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "clips").rglob("*") if p.is_file()}
    assert _cli(["curate", str(src), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert summary["this_run"]["sources_processed"] == 0 and summary["this_run"]["sources_skipped"] == 7
    assert (out / MANIFEST_NAME).read_bytes() == manifest_before
    assert {p: p.stat().st_mtime_ns for p in (out / "clips").rglob("*") if p.is_file()} == mtimes

    # --retry-failed retries exactly the rejected sources; accepted clips stay untouched.
    assert _cli(["curate", str(src), "--out", str(out), "--no-progress", "--retry-failed"]) == 0
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert summary["this_run"]["sources_processed"] == 4 and summary["dataset"]["clips_in_manifest"] == 3
    assert (out / MANIFEST_NAME).read_bytes() == manifest_before


def test_curate_cli_argument_errors(tmp_path):
    with pytest.raises(MMPhysInputError, match="--workers must be >= 1"):
        _cli(["curate", str(tmp_path), "--out", str(tmp_path / "o"), "--workers", "0"])
    with pytest.raises(MMPhysInputError, match="INPUT not found"):
        _cli(["curate", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--no-progress"])
    with pytest.raises(MMPhysInputError, match="unknown executor"):
        run_curation(tmp_path, tmp_path / "o", executor="slurm", progress=False)


def test_crash_leftovers_are_repaired_and_redone(tmp_path):
    src = make_input_folder(tmp_path, good=GOOD[:2])
    out = tmp_path / "dataset"
    run_curation(src, out, progress=False)
    records = read_manifest(out)
    # Simulate a crash: the last manifest line and the last source line were cut mid-write.
    manifest = (out / MANIFEST_NAME).read_text().splitlines(keepends=True)
    (out / MANIFEST_NAME).write_text("".join(manifest[:-1]) + manifest[-1][:20])
    report = _report(out)
    lost_key = next(r for r in report if r["type"] == "clip" and r.get("clip_id") == records[-1].id)["source"]
    kept = [json.dumps(e) + "\n" for e in report if e.get("source") != lost_key]
    (out / REPORT_NAME).write_text("".join(kept) + '{"type": "sour')
    summary = run_curation(src, out, progress=False)
    assert summary["this_run"]["sources_processed"] == 1  # only the source whose record was lost
    assert sorted(r.id for r in read_manifest(out)) == sorted(r.id for r in records)


def test_dataset_input_keeps_captions_limit_and_size_rules(tmp_path):
    sim = pytest.importorskip("mmphys_diffusers.simulation")
    from mmphys_diffusers.data.manifest import ManifestWriter, write_clip

    src = tmp_path / "simset"
    writer = ManifestWriter(src, info={"producer": "test"})
    for i, (family, seed) in enumerate(GOOD[:2]):
        clip = sim.simulate_clip(family, seed=seed)
        writer.add(write_clip(src, f"{i:06d}", clip.rgb, clip.caption, fps=8.0))
    captions = {r.caption for r in read_manifest(src)}
    cfg = CurationConfig.from_dict({"ingest": {"max_side": 32}, "output": {"pseudo_rgb": ["depth"]}})
    out = tmp_path / "curated"
    run_curation(src, out, config=cfg, limit=1, progress=False)
    (record,) = read_manifest(out)
    assert record.caption in captions  # a dataset's own captions win over generated ones
    assert (record.height, record.width) == (32, 32) and record.meta["source_size"] == [64, 64]
    # Pseudo-RGB videos rendered by the perception codecs, with their decode metadata.
    assert set(record.pseudo_rgb) == {"depth"} and (out / record.pseudo_rgb["depth"]).is_file()
    assert "depth" in record.meta["pseudo_rgb_meta"]
    # Huge sources are rejected (not decoded) with a reason naming the limit.
    cfg = CurationConfig.from_dict({"ingest": {"reject_above_side": 48}})
    summary = run_curation(src, tmp_path / "huge", config=cfg, progress=False)
    assert summary["sources"]["rejected"] == 2 and any("reject_above_side=48" in k for k in summary["reject_reasons"])


def test_rejected_clips_kept_for_inspection(tmp_path):
    src = make_input_folder(tmp_path, good=GOOD[:1])
    cfg = CurationConfig.from_dict({"quality": {"min_track_survival": 1.01}, "output": {"keep_rejected": True}})
    out = tmp_path / "strict"
    summary = run_curation(src, out, config=cfg, progress=False)
    assert summary["dataset"]["clips_in_manifest"] == 0
    clip = next(e for e in _report(out) if e["type"] == "clip" and e["scores"])
    assert clip["status"] == "rejected" and "tracks lost" in clip["reasons"][0]
    assert (out / "rejected" / "clips" / clip["clip_id"] / "rgb.mp4").is_file()


def test_process_pool_matches_inline(tmp_path):
    src = make_input_folder(tmp_path, good=GOOD[:2])
    inline = run_curation(src, tmp_path / "inline", workers=1, progress=False)
    pooled = run_curation(src, tmp_path / "pooled", workers=2, progress=False)
    assert pooled["clips"] == inline["clips"] and pooled["sources"] == inline["sources"]
    ids = lambda p: sorted(r.id for r in read_manifest(p))  # noqa: E731
    assert ids(tmp_path / "pooled") == ids(tmp_path / "inline") and len(ids(tmp_path / "inline")) == 2


def test_ray_executor_on_local_instance(tmp_path):
    pytest.importorskip("ray.data")
    src = make_input_folder(tmp_path, good=GOOD[:1])
    for p in ("garbage.mp4", "notes.mp4", "static.mp4"):
        (src / p).unlink()
    summary = run_curation(src, tmp_path / "ray_out", executor="ray", workers=1, progress=False)
    assert summary["sources"] == {"total": 2, "done": 1, "rejected": 1}
    assert len(read_manifest(tmp_path / "ray_out")) == 1


class CrashingLocalizer:
    """Kills its worker process (like a segfault) on 48x48 clips; behaves like the motion localiser otherwise."""

    def __init__(self):
        from mmphys_diffusers.curation.localize.motion import MotionEvidenceLocalizer

        self.inner = MotionEvidenceLocalizer()

    def localize(self, frames):
        if frames.shape[1] == 48:
            import os

            os._exit(3)
        return self.inner.localize(frames)


def test_process_pool_survives_a_killed_worker(tmp_path):
    src = make_input_folder(tmp_path, good=GOOD[:2])
    write_video(src / "killer.mp4", make_disc_clip(12, 48, 48, seed=2)["frames"], fps=8)
    cfg = CurationConfig.from_dict({"localize": {"backend": f"{__name__}:CrashingLocalizer", "fallback": None}})
    summary = run_curation(src, tmp_path / "out", config=cfg, workers=2, progress=False)
    killer = next(e for e in _report(tmp_path / "out") if e["type"] == "source" and e["path"].endswith("killer.mp4"))
    assert killer["status"] == "failed" and "worker crashed" in killer["reason"]
    assert summary["dataset"]["clips_in_manifest"] == 2  # every other source still finished


def test_worker_that_cannot_start_stops_the_run(tmp_path):
    src = make_input_folder(tmp_path, good=GOOD[:1])
    missing_model = CurationConfig.from_dict({"depth": {"backend": "depth_anything", "options": {"model": str(tmp_path / "no_such_model")}}})
    with pytest.raises(MMPhysInputError, match="depth backend 'depth_anything' could not be built.*no_such_model"):
        run_curation(src, tmp_path / "out1", config=missing_model, workers=1, progress=False)
    missing_class = CurationConfig.from_dict({"segment": {"backend": "mmphys_diffusers.no_such_module:Segmenter"}})
    with pytest.raises(MMPhysInputError, match="worker could not start.*no_such_module"):
        run_curation(src, tmp_path / "out2", config=missing_class, workers=2, progress=False)


def test_output_inside_the_input_folder_is_not_curated_again(tmp_path):
    src = make_input_folder(tmp_path, good=GOOD[:1])
    out = src / "curated"
    run_curation(src, out, progress=False)
    summary = run_curation(src, out, progress=False)
    assert summary["this_run"]["sources_found"] == 5  # the curated clips are not new inputs
    with pytest.raises(MMPhysInputError, match="is also an INPUT"):
        run_curation(out, out, progress=False)
