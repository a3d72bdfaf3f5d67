import numpy as np
import pytest
import torch

from mmphys_diffusers.data import ManifestWriter, MMPhysVideoDataset, collate_clips, sample_frame_indices, write_clip
from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.perception import get_codec, make_synthetic_cues


def _rgb_from_instances(instances):
    palette = np.array([[30, 30, 30], [220, 40, 40], [40, 200, 40], [40, 40, 220], [220, 220, 40]], np.uint8)
    return palette[np.clip(instances, 0, 4)]


@pytest.fixture
def dataset_root(tmp_path):
    writer = ManifestWriter(tmp_path, info={"producer": "test"})
    for i in range(3):
        cues = make_synthetic_cues(num_frames=9, height=32, width=32, num_instances=3, seed=i)
        rgb = _rgb_from_instances(cues["instances"])
        rec = write_clip(tmp_path, f"{i:06d}", rgb, f"clip {i}", 8.0, cue_arrays=cues)
        writer.add(rec)
    # a clip that only has a pseudo-RGB video for depth (e.g. from curation without arrays)
    cues = make_synthetic_cues(num_frames=9, height=32, width=32, num_instances=2, seed=9)
    depth_video, _ = get_codec("depth").encode(depth=cues["depth"])
    rec = write_clip(tmp_path, "video_only", _rgb_from_instances(cues["instances"]), "only video", 8.0, pseudo_rgb={"depth": depth_video})
    writer.add(rec)
    return tmp_path


def test_items_have_requested_size_and_cues(dataset_root):
    ds = MMPhysVideoDataset(dataset_root, cues=("depth", "semantics"), num_frames=5, height=16, width=24)
    assert len(ds) == 4
    item = ds[0]
    assert item["rgb"].shape == (5, 3, 16, 24) and item["rgb"].dtype == torch.float32
    assert 0.0 <= item["rgb"].min() and item["rgb"].max() <= 1.0
    assert set(item["perception"]) == {"depth", "semantics"}
    for v in item["perception"].values():
        assert v.shape == (5, 3, 16, 24)
    assert item["caption"] == "clip 0" and item["id"] == "000000"


def test_semantics_resized_with_nearest_keeps_palette(dataset_root):
    ds = MMPhysVideoDataset(dataset_root, cues=("semantics",), num_frames=9, height=16, width=16)
    video = ds[1]["perception"]["semantics"].numpy()
    decoded = get_codec("semantics").decode(video)["instances"]
    # every decoded id is one that exists in the source clip: nearest resize never blends colours
    src = make_synthetic_cues(num_frames=9, height=32, width=32, num_instances=3, seed=1)["instances"]
    assert set(np.unique(decoded)) <= set(np.unique(src))
    assert np.array_equal(decoded, src[:, ::2, ::2]) or (decoded == src[:, 1::2, 1::2]).mean() > 0.8


def test_exact_arrays_preferred_and_video_fallback(dataset_root):
    ds = MMPhysVideoDataset(dataset_root, cues=("depth",), num_frames=9, height=32, width=32)
    exact = get_codec("depth").encode(depth=make_synthetic_cues(9, 32, 32, 3, seed=2)["depth"])[0]
    assert np.allclose(ds[2]["perception"]["depth"].numpy(), exact, atol=1e-6)
    fallback = ds[3]["perception"]["depth"]  # read back from the H.264 depth video
    assert fallback.shape == (9, 3, 32, 32)
    with pytest.raises(MMPhysInputError, match="video_only.*semantics"):
        MMPhysVideoDataset(dataset_root, cues=("semantics",), num_frames=9, height=32, width=32)[3]


def test_collate_and_dataloader(dataset_root):
    ds = MMPhysVideoDataset(dataset_root, cues=("unified",), num_frames=5, height=16, width=16)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, [0, 1, 2]), batch_size=2, collate_fn=collate_clips)
    batch = next(iter(loader))
    assert batch["rgb"].shape == (2, 5, 3, 16, 16)
    assert batch["perception"]["unified"].shape == (2, 5, 3, 16, 16)
    assert batch["caption"] == ["clip 0", "clip 1"]


def test_frame_sampling_modes():
    assert sample_frame_indices(17, 5, "first").tolist() == [0, 1, 2, 3, 4]
    assert sample_frame_indices(17, 5, "uniform").tolist() == [0, 4, 8, 12, 16]
    assert sample_frame_indices(3, 5, "uniform").tolist() == [0, 0, 1, 2, 2]
    rng = np.random.default_rng(0)
    w = sample_frame_indices(17, 5, "random", rng)
    assert np.array_equal(np.diff(w), np.ones(4)) and 0 <= w[0] <= 12
    with pytest.raises(MMPhysInputError, match="frame_sampling"):
        sample_frame_indices(17, 5, "middle")


def test_random_sampling_is_seeded(dataset_root):
    a = MMPhysVideoDataset(dataset_root, cues=("depth",), num_frames=4, height=8, width=8, frame_sampling="random", seed=3)
    b = MMPhysVideoDataset(dataset_root, cues=("depth",), num_frames=4, height=8, width=8, frame_sampling="random", seed=3)
    assert torch.equal(a[0]["rgb"], b[0]["rgb"])


def test_bad_dataset_arguments(dataset_root, tmp_path_factory):
    with pytest.raises(MMPhysInputError, match="unknown cue"):
        MMPhysVideoDataset(dataset_root, cues=("normals",))
    with pytest.raises(MMPhysInputError, match="num_frames must be a positive int"):
        MMPhysVideoDataset(dataset_root, num_frames=0)
    with pytest.raises(MMPhysInputError, match="manifest not found"):
        MMPhysVideoDataset(tmp_path_factory.mktemp("empty"))
    (dataset_root / "clips" / "000001" / "rgb.mp4").write_bytes(b"")
    with pytest.raises(MMPhysInputError, match="empty.*000001"):
        MMPhysVideoDataset(dataset_root, cues=("depth",))[1]
