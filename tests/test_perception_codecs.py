"""Pseudo-RGB perception codecs: round trips (float, uint8, H.264), validation, registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.perception import (
    DepthCodec,
    SemanticsCodec,
    TracksCodec,
    available_cues,
    decode_to_visualization,
    depth_to_xyz,
    get_codec,
    instance_levels,
    instance_palette,
    make_synthetic_cues,
)
from mmphys_diffusers.perception.colors import RGB_TO_YCBCR, YCBCR_TO_RGB, min_palette_distance
from mmphys_diffusers.utils.video_io import DEFAULT_CRF, read_video, write_video

ALL_CUES = ["depth", "flow", "semantics", "tracks", "unified", "xyz"]


def to_uint8(video: np.ndarray) -> np.ndarray:
    """float [F,3,H,W] -> uint8 [F,H,W,3], as a video file or a PNG would store it."""
    return (np.clip(video, 0, 1).transpose(0, 2, 3, 1) * 255.0 + 0.5).astype(np.uint8)


def h264_round_trip(video: np.ndarray, tmp_path, name: str) -> np.ndarray:
    path = write_video(tmp_path / f"{name}.mp4", to_uint8(video))  # DEFAULT_CRF
    frames, _ = read_video(path)
    return frames


@pytest.fixture(scope="module")
def scene64() -> dict[str, np.ndarray]:
    return make_synthetic_cues(8, 64, 64, num_instances=12, min_radius=5, max_speed=2.0, seed=3)


@pytest.fixture(scope="module")
def scene128() -> dict[str, np.ndarray]:
    # 32 disc instances of radius >= 5 px, moving and occluding each other.
    return make_synthetic_cues(8, 128, 128, num_instances=32, min_radius=5, max_radius=12, max_speed=2.0, seed=1)


def xyz_of(depth: np.ndarray) -> np.ndarray:
    h, w = depth.shape[1:]
    return depth_to_xyz(depth, fx=float(w), fy=float(w), cx=(w - 1) / 2, cy=(h - 1) / 2)


def inputs_for(name: str, scene: dict) -> dict:
    if name == "xyz":
        return {"xyz": xyz_of(scene["depth"])}
    return {k: scene[k] for k in get_codec(name).required_arrays}


# ---------------------------------------------------------------- registry


def test_registry_lists_every_codec():
    assert available_cues() == ALL_CUES
    for name in ALL_CUES:
        codec = get_codec(name)
        assert codec.name == name
        assert codec.resize_mode in ("nearest", "bilinear")


def test_unknown_cue_is_an_input_error_naming_the_choices():
    with pytest.raises(MMPhysInputError, match="unknown cue 'nope'.*semantics"):
        get_codec("nope")


# ---------------------------------------------------------------- float round trips


@pytest.mark.parametrize("name", ALL_CUES)
def test_encode_gives_unit_range_video_and_json_meta(name, scene64):
    video, meta = get_codec(name).encode(**inputs_for(name, scene64))
    f, h, w = scene64["depth"].shape
    assert video.shape == (f, 3, h, w) and video.dtype == np.float32
    assert video.min() >= 0.0 and video.max() <= 1.0
    assert json.loads(json.dumps(meta)) == meta


def test_float_round_trips_are_exact_within_tolerance(scene64):
    s = scene64
    sem = get_codec("semantics")
    assert np.array_equal(sem.decode(*sem.encode(instances=s["instances"]))["instances"], s["instances"])

    depth = get_codec("depth")
    back = depth.decode(*depth.encode(depth=s["depth"]))["depth"]
    np.testing.assert_allclose(back, s["depth"], rtol=1e-4)

    xyz = xyz_of(s["depth"])
    codec = get_codec("xyz")
    np.testing.assert_allclose(codec.decode(*codec.encode(xyz=xyz))["xyz"], xyz, atol=1e-4)

    codec = get_codec("tracks")
    out = codec.decode(*codec.encode(tracks=s["tracks"], visibility=s["visibility"]))
    np.testing.assert_allclose(out["tracks"], s["tracks"], atol=1e-3)
    assert np.array_equal(out["visibility"], s["visibility"])

    codec = get_codec("flow")
    np.testing.assert_allclose(codec.decode(*codec.encode(flow=s["flow"]))["flow"], s["flow"], atol=1e-3)

    codec = get_codec("unified")
    out = codec.decode(*codec.encode(instances=s["instances"], depth=s["depth"], flow=s["flow"]))
    assert np.array_equal(out["instances"], s["instances"])
    np.testing.assert_allclose(out["depth"], s["depth"], rtol=1e-4)
    np.testing.assert_allclose(out["flow_magnitude"], np.linalg.norm(s["flow"], axis=-1), atol=1e-3)


def test_torch_inputs_and_uint8_channels_last_video_are_accepted(scene64):
    codec = get_codec("depth")
    video, meta = codec.encode(depth=torch.from_numpy(scene64["depth"]))
    from_torch = codec.decode(torch.from_numpy(video), meta)["depth"]
    from_uint8 = codec.decode(to_uint8(video), meta)["depth"]
    assert isinstance(from_torch, np.ndarray) and from_torch.shape == scene64["depth"].shape
    np.testing.assert_allclose(from_uint8, scene64["depth"], rtol=0.01)


# ---------------------------------------------------------------- after uint8 quantisation


def test_palette_is_deterministic_well_spread_and_prefix_consistent():
    p65 = instance_palette(65)
    assert np.array_equal(p65[0], [0, 0, 0])  # background is black
    assert len(np.unique(p65, axis=0)) == 65
    assert np.array_equal(instance_palette(33), p65[:33])  # greedy: prefixes agree
    assert min_palette_distance(p65) > 0.1
    assert min_palette_distance(p65[:33]) > min_palette_distance(p65)


def test_semantics_exact_after_uint8_for_64_ids():
    # 64 rectangular instances plus background, 8x8 px each, in a 72x72 frame.
    ids = np.zeros((2, 72, 72), np.int64)
    for k in range(64):
        r, c = divmod(k, 8)
        ids[:, r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = k + 1
    codec = SemanticsCodec(max_instances=64)
    video, meta = codec.encode(instances=ids)
    assert np.array_equal(codec.decode(to_uint8(video), meta)["instances"], ids)
    assert np.array_equal(codec.decode(to_uint8(video))["instances"], ids)  # no meta: full palette


def test_semantics_exact_after_uint8_on_overlapping_discs(scene128):
    codec = get_codec("semantics")
    video, meta = codec.encode(instances=scene128["instances"])
    assert len(np.unique(scene128["instances"])) >= 30
    assert np.array_equal(codec.decode(to_uint8(video), meta)["instances"], scene128["instances"])


@pytest.mark.parametrize("ratio", [5.0, 20.0, 100.0])
def test_depth_relative_error_below_one_percent_after_uint8(ratio):
    near = 0.5
    rows = np.linspace(0.0, 1.0, 48)[:, None] * np.ones((1, 40))
    depth = np.stack([near * ratio ** np.clip(rows + 0.1 * t, 0, 1) for t in range(3)]).astype(np.float32)
    depth[:, 10:20, 10:20] = near * 1.5  # a near object with sharp edges
    codec = DepthCodec()
    video, meta = codec.encode(depth=depth)
    assert meta["near"] == pytest.approx(near) and meta["far"] == pytest.approx(near * ratio)
    rel = np.abs(codec.decode(to_uint8(video), meta)["depth"] - depth) / depth
    assert rel.max() <= 0.01
    if ratio >= 20:
        # Luma alone (an 8-bit disparity; decode falls back to it when the chroma is grey) is not enough.
        ycc = to_uint8(video).astype(np.float32) / 255 @ RGB_TO_YCBCR.T
        ycc[..., 1:] = 0.0
        grey = np.clip(ycc @ YCBCR_TO_RGB.T, 0, 1).transpose(0, 3, 1, 2)
        coarse_rel = np.abs(codec.decode(grey, meta)["depth"] - depth) / depth
        assert coarse_rel.max() > 0.03


def test_depth_uses_given_range_and_clips_outside_it():
    depth = np.full((1, 8, 8), 2.0, np.float32)
    depth[0, 0, 0] = 100.0  # beyond `far`
    codec = DepthCodec(near=1.0, far=10.0)
    video, meta = codec.encode(depth=depth)
    assert (meta["near"], meta["far"]) == (1.0, 10.0)
    out = codec.decode(video)["depth"]  # no meta: the constructor range applies
    assert out[0, 0, 0] == pytest.approx(10.0, rel=1e-4)
    np.testing.assert_allclose(out[0, 1:, 1:], 2.0, rtol=1e-4)


def test_xyz_after_uint8_within_one_step_per_axis(scene64):
    xyz = xyz_of(scene64["depth"])
    codec = get_codec("xyz")
    video, meta = codec.encode(xyz=xyz)
    step = (np.asarray(meta["bounds"])[:, 1] - np.asarray(meta["bounds"])[:, 0]) / 255
    err = np.abs(codec.decode(to_uint8(video), meta)["xyz"] - xyz)
    assert (err <= step * 0.5 + 1e-4).all()


def test_depth_to_xyz_pinhole():
    depth = np.full((1, 3, 4), 2.0, np.float32)
    xyz = depth_to_xyz(depth, fx=2.0, fy=4.0, cx=1.0, cy=1.0)
    assert xyz.shape == (1, 3, 4, 3)
    np.testing.assert_allclose(xyz[0, 2, 3], [(3 - 1) * 2 / 2, (2 - 1) * 2 / 4, 2.0])
    with pytest.raises(MMPhysInputError, match="fx, fy"):
        depth_to_xyz(depth, fx=0.0, fy=1.0, cx=0.0, cy=0.0)


def _rigid_tracks(size: int = 256, frames: int = 6):
    """Rotation + translation of the whole frame, with a square occluder hiding some points."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    tracks, vis = [], []
    for t in range(frames):
        a = 0.03 * t
        cx = cy = size / 2
        x = cx + np.cos(a) * (cols - cx) - np.sin(a) * (rows - cy) + 3.3 * t
        y = cy + np.sin(a) * (cols - cx) + np.cos(a) * (rows - cy) - 1.7 * t
        tracks.append(np.stack([x, y], -1))
        occluded = (np.abs(x - 100) < 30) & (np.abs(y - 150) < 30) & (t > 0)
        vis.append(~occluded & (x >= 0) & (x < size) & (y >= 0) & (y < size))
    return np.stack(tracks).astype(np.float32), np.stack(vis)


def test_tracks_within_half_pixel_after_uint8_at_256px():
    tracks, vis = _rigid_tracks()
    assert (~vis).sum() > 1000  # some points really are hidden
    codec = get_codec("tracks")
    video, meta = codec.encode(tracks=tracks, visibility=vis)
    out = codec.decode(to_uint8(video), meta)
    err = np.linalg.norm(out["tracks"] - tracks, axis=-1)
    assert err.mean() <= 0.5
    assert err.max() <= 1.0
    assert np.array_equal(out["visibility"], vis)
    # Absolute coordinates in 8 bits would be ~1 px steps; displacements do much better here.
    assert err.mean() < 0.5 * 256 / 255 / 2


def test_tracks_per_frame_bounds_are_tighter_and_nan_allowed_where_hidden():
    tracks, vis = _rigid_tracks(64, 4)
    tracks = tracks.copy()
    tracks[~vis] = np.nan
    glob = TracksCodec()
    per_frame = TracksCodec(per_frame=True)
    errs = []
    for codec in (glob, per_frame):
        video, meta = codec.encode(tracks=tracks, visibility=vis)
        out = codec.decode(to_uint8(video), meta)
        assert np.array_equal(out["visibility"], vis)
        errs.append(np.linalg.norm(out["tracks"] - tracks, axis=-1)[vis].mean())
    assert errs[1] < errs[0]
    with pytest.raises(MMPhysInputError, match="NaN or Inf at visible"):
        glob.encode(tracks=np.where(vis[..., None], np.nan, tracks), visibility=vis)


def test_flow_epe_after_uint8(scene64):
    codec = get_codec("flow")
    video, meta = codec.encode(flow=scene64["flow"])
    epe = np.linalg.norm(codec.decode(to_uint8(video), meta)["flow"] - scene64["flow"], axis=-1)
    assert epe.mean() < 0.02 * meta["max_flow"]
    assert epe.max() < 0.05 * meta["max_flow"]
    # Direction is the hue: +x flow is red, zero flow is white.
    red, _ = codec.encode(flow=np.tile(np.array([1.0, 0.0], np.float32), (1, 2, 2, 1)))
    np.testing.assert_allclose(red[0, :, 0, 0], [1, 0, 0], atol=1e-6)
    white, _ = get_codec("flow", max_flow=5.0).encode(flow=np.zeros((1, 2, 2, 2), np.float32))
    np.testing.assert_allclose(white, 1.0)


def test_unified_after_uint8(scene64):
    codec = get_codec("unified")
    video, meta = codec.encode(instances=scene64["instances"], depth=scene64["depth"], flow=scene64["flow"])
    out = codec.decode(to_uint8(video), meta)
    assert np.array_equal(out["instances"], scene64["instances"])
    rel = np.abs(out["depth"] - scene64["depth"]) / scene64["depth"]
    ratio = meta["far"] / meta["near"]
    assert rel.max() <= ratio / 255  # one 8-bit disparity step at the far end
    mag = np.linalg.norm(scene64["flow"], axis=-1)
    assert np.abs(out["flow_magnitude"] - mag).max() <= meta["max_flow"] / 255
    levels = instance_levels(32)
    assert levels[0] == 0.0 and levels[1] == 1.0 and levels[2] == 0.5 and len(np.unique(levels)) == 33


# ---------------------------------------------------------------- after H.264


def test_semantics_after_h264_at_default_crf(scene128, tmp_path):
    assert DEFAULT_CRF == 18  # documented in docs/perception_codecs.md
    codec = get_codec("semantics")
    video, meta = codec.encode(instances=scene128["instances"])
    out = codec.decode(h264_round_trip(video, tmp_path, "semantics"), meta)["instances"]
    assert np.mean(out == scene128["instances"]) >= 0.99
    # Without the edge refinement the chroma-blurred boundaries cost more.
    plain = SemanticsCodec(refine_edges=False).decode(h264_round_trip(video, tmp_path, "s2"), meta)["instances"]
    assert np.mean(out == scene128["instances"]) > np.mean(plain == scene128["instances"])


def test_depth_after_h264_at_default_crf(tmp_path):
    scene = make_synthetic_cues(8, 128, 128, num_instances=6, min_radius=8, max_speed=1.0, seed=5)
    codec = get_codec("depth")
    video, meta = codec.encode(depth=scene["depth"])
    out = codec.decode(h264_round_trip(video, tmp_path, "depth"), meta)["depth"]
    rel = np.abs(out - scene["depth"]) / scene["depth"]
    assert np.median(rel) < 0.01
    assert rel.mean() < 0.03


# ---------------------------------------------------------------- visualisation


@pytest.mark.parametrize("name", ALL_CUES)
def test_decode_to_visualization_gives_uint8_frames(name, scene64):
    video, meta = get_codec(name).encode(**inputs_for(name, scene64))
    vis = decode_to_visualization(name, video, meta)
    f, h, w = scene64["depth"].shape
    assert vis.dtype == np.uint8 and vis.shape[0] == f and vis.shape[1] == h and vis.shape[-1] == 3
    assert vis.std() > 0  # shows something
    if name == "semantics":
        assert np.array_equal(vis, to_uint8(video))  # the palette as is


def test_depth_visualization_is_brighter_when_nearer():
    depth = np.linspace(1.0, 10.0, 16, dtype=np.float32)[None, None, :].repeat(4, 1)
    video, meta = get_codec("depth").encode(depth=depth)
    luma = decode_to_visualization("depth", video, meta).astype(float).mean(-1)[0, 0]
    assert (np.diff(luma) <= 0).all() and luma[0] > luma[-1] + 100


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "name, arrays, match",
    [
        ("semantics", {"instances": np.zeros((4, 4), np.int64)}, r"`instances` must be shaped \[F,H,W\]"),
        ("semantics", {"instances": np.full((1, 4, 4), 65)}, r"ids must be in \[0, 64\]"),
        ("semantics", {"instances": np.full((1, 4, 4), -1)}, r"ids must be in \[0, 64\]"),
        ("semantics", {"instances": np.full((1, 4, 4), 0.5)}, "integer ids"),
        ("semantics", {}, r"needs cue array\(s\) \['instances'\]"),
        ("depth", {"depth": np.zeros((1, 4, 4), np.float32)}, "must be > 0"),
        ("depth", {"depth": np.full((1, 4, 4), np.nan, np.float32)}, "NaN or Inf"),
        ("depth", {"depth": np.ones((1, 4, 4)), "flow": np.ones((1, 4, 4, 2))}, r"unexpected array\(s\) \['flow'\]"),
        ("xyz", {"xyz": np.ones((1, 4, 4, 2), np.float32)}, r"`xyz` must be shaped \[F,H,W,3\]"),
        ("flow", {"flow": np.full((1, 4, 4, 2), np.inf, np.float32)}, "NaN or Inf"),
        ("flow", {"flow": np.ones((1, 4, 4, 2), bool)}, "must be a float array"),
        (
            "tracks",
            {"tracks": np.ones((1, 4, 4, 2)), "visibility": np.ones((1, 4, 5), bool)},
            r"`visibility` must be shaped \(1, 4, 4\)",
        ),
        ("tracks", {"tracks": np.ones((1, 4, 4, 2)), "visibility": np.full((1, 4, 4), 2)}, "must be bool"),
        (
            "unified",
            {"instances": np.ones((1, 4, 4), int), "depth": np.ones((1, 4, 4)), "flow": np.ones((1, 4, 3, 2))},
            "must share",
        ),
    ],
)
def test_bad_inputs_raise_input_errors(name, arrays, match):
    with pytest.raises(MMPhysInputError, match=match):
        get_codec(name).encode(**arrays)


def test_bad_videos_meta_and_arguments_raise_input_errors():
    codec = get_codec("depth")
    with pytest.raises(MMPhysInputError, match="3 channels"):
        codec.decode(np.zeros((1, 4, 8, 8), np.float32))
    with pytest.raises(MMPhysInputError, match="NaN or Inf"):
        codec.decode(np.full((1, 3, 8, 8), np.nan, np.float32))
    with pytest.raises(MMPhysInputError, match="0 < near < far"):
        codec.decode(np.zeros((1, 3, 8, 8), np.float32), {"near": 5.0, "far": 1.0})
    with pytest.raises(MMPhysInputError, match="both `near` and `far`"):
        DepthCodec(near=1.0)
    with pytest.raises(MMPhysInputError, match="num_ids"):
        get_codec("semantics").decode(np.zeros((1, 3, 8, 8), np.float32), {"num_ids": 500})
    with pytest.raises(MMPhysInputError, match="max_flow"):
        get_codec("flow", max_flow=-1.0)
    with pytest.raises(MMPhysInputError, match="bounds"):
        get_codec("tracks").decode(np.zeros((1, 3, 8, 8), np.float32), {"bounds": [[1, 0], [0, 1]]})
