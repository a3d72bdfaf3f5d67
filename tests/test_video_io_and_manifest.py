import json

import numpy as np
import pytest

from mmphys_diffusers.data.manifest import (
    ClipRecord,
    ManifestWriter,
    load_cue_arrays,
    read_manifest,
    write_clip,
)
from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.utils.atomic import atomic_path
from mmphys_diffusers.utils.video_io import probe_video, read_video, tile_videos, write_video


def _moving_square(f=9, h=32, w=48):
    frames = np.zeros((f, h, w, 3), np.uint8)
    for t in range(f):
        frames[t, 8:20, 2 + 3 * t : 14 + 3 * t] = (220, 40, 40)
    return frames


def test_write_read_roundtrip_mp4(tmp_path):
    frames = _moving_square()
    path = write_video(tmp_path / "a.mp4", frames, fps=8, crf=10)
    out, fps = read_video(path)
    assert out.shape == frames.shape and fps == pytest.approx(8.0)
    assert np.abs(out.astype(int) - frames.astype(int)).mean() < 3.0
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height) == (9, 48, 32)


def test_odd_size_written_without_resize(tmp_path):
    frames = _moving_square(h=31, w=45)
    out, _ = read_video(write_video(tmp_path / "odd.mp4", frames))
    assert out.shape == frames.shape


def test_float_frames_accepted_and_frame_folder_read(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    frames = _moving_square(f=3)
    for i, fr in enumerate(frames):
        Image.fromarray(fr).save(folder / f"{i:04d}.png")
    out, fps = read_video(folder)
    assert np.array_equal(out, frames) and fps == 0.0
    out2, _ = read_video(write_video(tmp_path / "f.mp4", frames.astype(np.float32) / 255.0, crf=0))
    # float input is quantised like uint8; 4:2:0 chroma blurs only the hard red edges
    assert np.abs(out2.astype(int) - frames.astype(int)).mean() < 2.0


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 10])
def test_corrupt_video_names_file(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(MMPhysInputError, match="bad.mp4"):
        read_video(bad)
    with pytest.raises(MMPhysInputError, match="bad.mp4"):
        probe_video(bad)


def test_missing_video_and_bad_shape(tmp_path):
    with pytest.raises(MMPhysInputError, match="not found"):
        read_video(tmp_path / "nope.mp4")
    with pytest.raises(MMPhysInputError, match=r"\[F, H, W, 3\]"):
        write_video(tmp_path / "x.mp4", np.zeros((4, 8, 8), np.uint8))


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_tile_videos_layout():
    a = np.zeros((2, 4, 5, 3), np.uint8)
    b = np.full((2, 4, 5, 3), 9, np.uint8)
    out = tile_videos([a, b], pad=1)
    assert out.shape == (2, 4, 11, 3) and (out[:, :, 6:] == 9).all()
    with pytest.raises(MMPhysInputError, match="frame counts"):
        tile_videos([a, b[:1]])


def _clip(tmp_path, clip_id="000001", f=5, h=16, w=16):
    inst = np.zeros((f, h, w), np.uint8)
    inst[:, 4:8, 4:8] = 1
    arrays = {"instances": inst, "depth": np.full((f, h, w), 3.0, np.float32)}
    return write_clip(tmp_path, clip_id, _moving_square(f, h, w), "a red square slides", 8.0, cue_arrays=arrays, meta={"g": np.float64(9.8)})


def test_write_clip_and_manifest_roundtrip(tmp_path):
    rec = _clip(tmp_path)
    w = ManifestWriter(tmp_path, info={"producer": "test"})
    w.add(rec)
    with pytest.raises(MMPhysInputError, match="already"):
        w.add(rec)
    records = read_manifest(tmp_path)
    assert [r.id for r in records] == ["000001"] and records[0].meta == {"g": 9.8}
    arrays = load_cue_arrays(tmp_path, records[0])
    assert set(arrays) == {"instances", "depth"} and arrays["instances"].sum() == 5 * 16
    assert json.loads((tmp_path / "dataset.json").read_text())["producer"] == "test"


def test_manifest_resume_drops_truncated_tail(tmp_path):
    w = ManifestWriter(tmp_path)
    w.add(_clip(tmp_path, "a"))
    with open(tmp_path / "manifest.jsonl", "a") as fh:
        fh.write('{"id": "b", "rgb": "cl')  # crash mid-append
    assert [r.id for r in read_manifest(tmp_path)] == ["a"]
    w2 = ManifestWriter(tmp_path)
    assert w2.has("a") and not w2.has("b")
    w2.add(_clip(tmp_path, "b"))
    assert [r.id for r in read_manifest(tmp_path)] == ["a", "b"]


def test_manifest_errors_name_the_problem(tmp_path):
    with pytest.raises(MMPhysInputError, match="manifest not found"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.jsonl").write_text('{"id": 1}\n{"id": "x", "rgb": "r"}\n')
    with pytest.raises(MMPhysInputError, match=r"manifest.jsonl:1: record is missing"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.jsonl").write_text("garbage\n" + ClipRecord("x", "r", "c", 1, 8.0, 4, 4).to_json() + "\n")
    with pytest.raises(MMPhysInputError, match=r"manifest.jsonl:1: malformed JSON"):
        read_manifest(tmp_path)


def test_write_clip_validates_cue_arrays(tmp_path):
    rgb = _moving_square(3, 8, 8)
    with pytest.raises(MMPhysInputError, match="unknown cue array 'segm'"):
        write_clip(tmp_path, "x", rgb, "c", 8.0, cue_arrays={"segm": np.zeros((3, 8, 8))})
    with pytest.raises(MMPhysInputError, match="'depth' has shape"):
        write_clip(tmp_path, "x", rgb, "c", 8.0, cue_arrays={"depth": np.zeros((2, 8, 8))})
    with pytest.raises(MMPhysInputError, match="'tracks' has shape"):
        write_clip(tmp_path, "x", rgb, "c", 8.0, cue_arrays={"tracks": np.zeros((3, 8, 8))})
    with pytest.raises(MMPhysInputError, match="rgb must be uint8"):
        write_clip(tmp_path, "x", rgb.astype(np.float32), "c", 8.0)


def test_corrupt_cue_file_names_it(tmp_path):
    rec = _clip(tmp_path)
    (tmp_path / rec.cues).write_bytes(b"junk")
    with pytest.raises(MMPhysInputError, match="corrupt cue file"):
        load_cue_arrays(tmp_path, rec)
