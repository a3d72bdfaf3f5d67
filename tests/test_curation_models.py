"""Model backends with tiny random-config transformers models built offline.

Each model is saved with save_pretrained into tmp_path and loaded back through the
backend (from_pretrained), so loading and inference code run for real; outputs are
garbage, but shapes, dtypes and formats must be right.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mmphys_diffusers.curation import DEPTH_ESTIMATORS, LOCALIZERS, SEGMENTERS, CurationConfig, CurationWorker  # noqa: E402
from mmphys_diffusers.curation.synthetic import make_disc_clip  # noqa: E402
from mmphys_diffusers.errors import MMPhysInputError  # noqa: E402

FRAMES = make_disc_clip(6, 40, 48, seed=0)["frames"]


@pytest.fixture(scope="module")
def tiny_depth_anything(tmp_path_factory):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessorPil

    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, image_size=28, patch_size=14, out_features=["stage1", "stage2"], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 16], fusion_hidden_size=8, head_hidden_size=8, reassemble_factors=[2, 1], patch_size=14)
    path = tmp_path_factory.mktemp("tiny_depth_anything")
    DepthAnythingForDepthEstimation(config).save_pretrained(path)
    DPTImageProcessorPil(size={"height": 28, "width": 28}, keep_aspect_ratio=False, ensure_multiple_of=14).save_pretrained(path)
    return str(path)


def test_depth_anything_backend(tiny_depth_anything):
    depth = DEPTH_ESTIMATORS.build("depth_anything", model=tiny_depth_anything, device="cpu", dtype="float32", batch_size=4)
    out = depth.estimate(FRAMES)
    assert out.shape == FRAMES.shape[:3] and out.dtype == np.float32
    assert np.isfinite(out).all() and (out > 0).all()
    metric = DEPTH_ESTIMATORS.build("depth_anything", model=tiny_depth_anything, output="depth")
    assert (metric.estimate(FRAMES[:2]) > 0).all()
    with pytest.raises(MMPhysInputError, match="unknown dtype"):
        DEPTH_ESTIMATORS.build("depth_anything", model=tiny_depth_anything, dtype="float33")


@pytest.fixture(scope="module")
def tiny_sam2_video(tmp_path_factory):
    from transformers import Sam2HieraDetConfig, Sam2VideoConfig, Sam2VideoModel

    torch.manual_seed(0)
    image, hidden = 128, 128  # the memory pointer reshape needs hidden > memory channels (fixed at 64)
    hiera = Sam2HieraDetConfig(
        hidden_size=8, num_attention_heads=1, embed_dim_per_stage=[8, 16, 32, 64], blocks_per_stage=[1, 1, 2, 1],
        num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 4], global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2], image_size=[image, image],
    )
    vision = {"backbone_config": hiera, "backbone_channel_list": [64, 32, 16, 8], "backbone_feature_sizes": [[image // 4] * 2, [image // 8] * 2, [image // 16] * 2], "fpn_hidden_size": hidden}
    config = Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config={"hidden_size": hidden, "image_size": image, "patch_size": 16, "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": hidden, "mlp_dim": 32, "num_attention_heads": 2, "iou_head_hidden_dim": 16},
        image_size=image, memory_attention_hidden_size=hidden, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=32,
        memory_attention_rope_feat_sizes=[image // 16, image // 16], memory_encoder_hidden_size=hidden, memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=hidden, memory_fuser_embed_dim=hidden, memory_fuser_intermediate_dim=32, num_maskmem=3,
    )
    path = tmp_path_factory.mktemp("tiny_sam2_video")
    Sam2VideoModel(config).save_pretrained(path)
    return str(path)


def test_sam2_video_backend(tiny_sam2_video):
    seg = SEGMENTERS.build("sam2_video", model=tiny_sam2_video, device="cpu", mask_threshold=-1e9)
    loc = {
        "phenomenon": {"label": "other", "evidence": [{"frame": 0, "observation": "-"}]},
        "subjects": [
            {"id": 1, "name": "a", "evidence": [{"frame": 2, "box": [5, 5, 20, 20]}]},
            {"id": 2, "name": "b", "evidence": [{"frame": 0, "box": [25, 10, 40, 30]}]},
        ],
    }
    out = seg.segment(FRAMES, loc)
    assert out.shape == FRAMES.shape[:3] and out.dtype == np.int32
    # A threshold below every logit makes each propagated mask cover the frame: every frame is labelled.
    assert set(np.unique(out)) <= {0, 1, 2} and (out > 0).all(axis=(1, 2)).all()
    assert seg.segment(FRAMES, {"phenomenon": loc["phenomenon"], "subjects": []}).max() == 0


@pytest.fixture(scope="module")
def tiny_qwen25_vl(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    torch.manual_seed(0)
    # Byte-level tokenizer with no merges (one token per byte) plus the Qwen-VL special tokens.
    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tok.add_special_tokens(specials)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}{% else %}"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
        "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in specials}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1, "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56, "fullatt_block_indexes": [0]},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    path = tmp_path_factory.mktemp("tiny_qwen25_vl")
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56).save_pretrained(path)
    return str(path)


def test_qwen25_vl_backend_generates_and_reports_malformed(tiny_qwen25_vl):
    loc = LOCALIZERS.build("transformers_vlm", model=tiny_qwen25_vl, max_new_tokens=8, num_frames=3, device="cpu", dtype="float32")
    assert loc.box_format == "resized"  # the Qwen2.5-VL convention was picked from the config
    text = loc.generate([FRAMES[i] for i in (0, 2, 5)], [0, 2, 5], "Describe.")
    assert isinstance(text, str)
    # The processor's resized image (multiples of patch 14 x merge 2) is what Qwen2.5-VL boxes refer to.
    assert loc._resized_hw is not None and all(v % 28 == 0 for v in loc._resized_hw)
    # A random model cannot answer in the evidence schema: the error is a malformed answer, which the pipeline retries.
    with pytest.raises(MMPhysInputError, match="not JSON|violates the evidence schema"):
        loc.localize(FRAMES)
    cfg = CurationConfig.from_dict({"localize": {"backend": "transformers_vlm", "options": {"model": tiny_qwen25_vl, "max_new_tokens": 4, "num_frames": 2}, "retries": 0, "fallback": "motion"}})
    _, info = CurationWorker(cfg, "unused").localize(FRAMES)
    assert info["backend"] == "motion" and "MMPhysInputError" in info["fallback_after"][0]


def test_resized_boxes_scale_back_to_clip_pixels(tiny_qwen25_vl):
    loc = LOCALIZERS.build("transformers_vlm", model=tiny_qwen25_vl, max_new_tokens=2, num_frames=2)
    loc._resized_hw = (56, 56)
    assert loc.box_scale(width=48, height=40) == (48 / 56, 40 / 56)
