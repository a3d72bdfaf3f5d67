"""Bidirectionally Controlled Teacher transformers on tiny CogVideoX and Wan configs (CPU, random weights)."""

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel, WanTransformer3DModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file

from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.models import (
    TEACHER_CLASSES,
    ControlLinkCogVideoXTransformer3DModel,
    ControlLinkTransformer3DModel,
    ControlLinkTransformerOutput,
    ControlLinkWanTransformer3DModel,
    is_teacher_class_name,
    teacher_class_for,
)

BACKBONES = ["cogvideox", "wan"]
TEXT_LEN, TEXT_DIM, CHANNELS, DIM = 6, 16, 4, 16


def _base(backbone: str, num_layers: int = 2, seed: int = 0, **overrides):
    """A tiny random base transformer in eval mode; same seed, same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build_base(backbone, num_layers, **overrides).eval()


def _build_base(backbone: str, num_layers: int, **overrides):
    if backbone == "cogvideox":
        kwargs = dict(
            num_attention_heads=2, attention_head_dim=8, in_channels=CHANNELS, out_channels=CHANNELS,
            time_embed_dim=16, text_embed_dim=TEXT_DIM, num_layers=num_layers, sample_width=8, sample_height=8,
            sample_frames=9, max_text_seq_length=TEXT_LEN,
        )
        kwargs.update(overrides)
        return CogVideoXTransformer3DModel(**kwargs)
    kwargs = dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=CHANNELS,
        out_channels=CHANNELS, text_dim=TEXT_DIM, freq_dim=16, ffn_dim=32, num_layers=num_layers, rope_max_seq_len=32,
    )
    kwargs.update(overrides)
    return WanTransformer3DModel(**kwargs)


def _latents(backbone: str, batch: int = 2, frames: int = 2, size: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, frames, CHANNELS, size, size) if backbone == "cogvideox" else (batch, CHANNELS, frames, size, size)
    return torch.randn(shape, generator=g)


def _text(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, TEXT_LEN, TEXT_DIM, generator=torch.Generator().manual_seed(seed))


def _base_forward(base, backbone: str, latents, text, timestep):
    if backbone == "cogvideox":
        return base(latents, text, timestep).sample
    return base(latents, timestep, text).sample


def _perturb_(parameters, seed: int = 3, scale: float = 0.2) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in parameters:
            p.copy_(torch.randn(p.shape, generator=g) * scale)


@pytest.fixture(params=BACKBONES)
def backbone(request) -> str:
    return request.param


@pytest.fixture
def base_and_teacher(backbone):
    base = _base(backbone)
    return base, ControlLinkTransformer3DModel.from_transformer(base)


def test_dispatch_picks_the_teacher_class(base_and_teacher, backbone):
    base, teacher = base_and_teacher
    expected = ControlLinkCogVideoXTransformer3DModel if backbone == "cogvideox" else ControlLinkWanTransformer3DModel
    assert type(teacher) is expected
    assert teacher_class_for(type(base)) is expected and teacher_class_for(base) is expected
    assert TEACHER_CLASSES[type(base)] is expected
    assert is_teacher_class_name(expected.__name__) and not is_teacher_class_name(type(base).__name__)
    assert not is_teacher_class_name(None)
    assert isinstance(teacher, type(base))  # keeps ModelMixin/PeftAdapterMixin/... of the base
    assert teacher._supports_gradient_checkpointing
    assert teacher.linked_layers == [0, 1]
    assert not teacher.training


def test_zero_init_rgb_stream_is_the_base_model(base_and_teacher, backbone):
    base, teacher = base_and_teacher
    latents, text = _latents(backbone), _text()
    timestep = torch.tensor([999, 321])
    with torch.no_grad():
        reference = _base_forward(base, backbone, latents, text, timestep)
        for perception, perception_t in [(_latents(backbone, seed=7), torch.tensor([0, 5])), (latents * -3, 999)]:
            out = teacher(latents, perception, text, timestep, perception_timestep=perception_t)
            assert isinstance(out, ControlLinkTransformerOutput) and out.hidden_states is None
            assert out.sample.shape == reference.shape == out.perception_sample.shape
            torch.testing.assert_close(out.sample, reference, atol=1e-6, rtol=0)

        # Exactly the base model run on the 2B concatenation of both streams (zero links, zero task embeddings).
        perception, perception_t = _latents(backbone, seed=9), torch.tensor([10, 20])
        out = teacher(latents, perception, text, timestep, perception_timestep=perception_t)
        joint = _base_forward(
            base,
            backbone,
            torch.cat([latents, perception]),
            torch.cat([text, text]),
            torch.cat([timestep, perception_t]),
        )
    assert torch.equal(torch.cat([out.sample, out.perception_sample]), joint)


def test_links_and_task_embeddings_connect_the_streams(base_and_teacher, backbone):
    _, teacher = base_and_teacher
    latents, text, t = _latents(backbone), _text(), torch.tensor([500, 500])
    other_latents, perception, other_perception = (_latents(backbone, seed=s) for s in (4, 5, 6))

    def run(rgb, perc):
        with torch.no_grad():
            return teacher(rgb, perc, text, t)

    # Zero links: each stream is independent of the other.
    assert torch.equal(run(latents, perception).sample, run(latents, other_perception).sample)
    assert torch.equal(run(latents, perception).perception_sample, run(other_latents, perception).perception_sample)

    _perturb_(teacher.perception_to_rgb_links.parameters())
    assert not torch.allclose(run(latents, perception).sample, run(latents, other_perception).sample, atol=1e-4)
    # The reverse direction is still zero.
    assert torch.equal(run(latents, perception).perception_sample, run(other_latents, perception).perception_sample)

    _perturb_(teacher.rgb_to_perception_links.parameters(), seed=4)
    assert not torch.allclose(
        run(latents, perception).perception_sample, run(other_latents, perception).perception_sample, atol=1e-4
    )

    # Task embeddings shift each stream's conditioning: same inputs, different task -> different output.
    teacher.reset_control_parameters()
    same = run(latents, latents)
    assert torch.equal(same.sample, same.perception_sample)
    with torch.no_grad():
        teacher.task_embedding.weight[1].normal_(generator=torch.Generator().manual_seed(0))
    differs = run(latents, latents)
    assert torch.equal(differs.sample, same.sample)
    assert not torch.allclose(differs.perception_sample, same.perception_sample, atol=1e-4)


def test_rgb_stream_transformer_is_the_teacher_rgb_stream_without_links(base_and_teacher, backbone):
    """`rgb_stream_transformer()`: a stock base model with the shared weights and the RGB task embedding folded
    in; it equals the teacher's RGB output with the perception->RGB links zeroed, whatever the perception input."""
    base, teacher = base_and_teacher
    _perturb_(teacher.control_parameters())  # trained-looking task embeddings and links, both directions
    _perturb_(base.parameters(), seed=11, scale=0.1)
    teacher.load_state_dict(base.state_dict(), strict=False)  # a trained backbone, not the zero-link base
    rgb_only = teacher.rgb_stream_transformer()
    assert type(rgb_only) is type(base) and not hasattr(rgb_only, "task_embedding")
    latents, text, t = _latents(backbone), _text(), torch.tensor([700, 90])
    with torch.no_grad():
        linked = teacher(latents, _latents(backbone, seed=5), text, t).sample
        got = _base_forward(rgb_only.eval(), backbone, latents, text, t)
        # the links matter here, so dropping them changes the prediction ...
        assert not torch.allclose(got, linked, atol=1e-3)
        for link in teacher.perception_to_rgb_links:
            link.weight.zero_()
            link.bias.zero_()
        for seed in (5, 6):  # ... and without them the teacher's RGB stream is exactly the extracted model
            torch.testing.assert_close(teacher(latents, _latents(backbone, seed=seed), text, t).sample, got, atol=1e-5, rtol=1e-5)
        # the task embedding was folded in, not dropped: without it the output differs
        with_no_task = type(base).from_config(base.config)
        with_no_task.load_state_dict(base.state_dict())
        assert not torch.allclose(_base_forward(with_no_task.eval(), backbone, latents, text, t), got, atol=1e-4)
    assert teacher.task_embedding.weight.abs().sum() > 0  # the teacher itself is unchanged by the extraction


def test_links_update_both_streams_from_pre_link_states(base_and_teacher, backbone):
    """After a linked block: rgb += p2r(perception_pre), perception += r2p(rgb_pre) (symmetric)."""
    _, teacher = base_and_teacher
    _perturb_(teacher.control_parameters())
    blocks = teacher.transformer_blocks if backbone == "cogvideox" else teacher.blocks
    captured = {}

    def keep_block0_output(module, args, output):
        captured["block0_out"] = output[0] if isinstance(output, tuple) else output  # CogVideoX returns (video, text)

    out_hook = blocks[0].register_forward_hook(keep_block0_output)
    in_hook = blocks[1].register_forward_pre_hook(lambda module, args: captured.__setitem__("block1_in", args[0]))
    try:
        with torch.no_grad():
            out = teacher(_latents(backbone), _latents(backbone, seed=2), _text(), 100, output_hidden_states_at=[0])
    finally:
        out_hook.remove()
        in_hook.remove()
    rgb_pre, perception_pre = captured["block0_out"].chunk(2)
    with torch.no_grad():
        rgb_post = rgb_pre + teacher.perception_to_rgb_links[0](perception_pre)
        perception_post = perception_pre + teacher.rgb_to_perception_links[0](rgb_pre)
    torch.testing.assert_close(captured["block1_in"], torch.cat([rgb_post, perception_post]), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.hidden_states[0], rgb_post, atol=1e-6, rtol=0)


def test_weights_are_shared_names_kept_and_not_aliased(base_and_teacher, backbone):
    base, teacher = base_and_teacher
    base_state, teacher_state = base.state_dict(), teacher.state_dict()
    assert set(base_state) <= set(teacher_state)
    new_keys = set(teacher_state) - set(base_state)
    new_prefixes = ("task_embedding.", "perception_to_rgb_links.", "rgb_to_perception_links.")
    assert new_keys and all(k.startswith(new_prefixes) for k in new_keys)
    block_prefix = "transformer_blocks.1." if backbone == "cogvideox" else "blocks.1."
    assert any(k.startswith(block_prefix) for k in teacher_state)

    links = len(teacher.linked_layers)
    time_dim = base.config.time_embed_dim if backbone == "cogvideox" else DIM
    expected_new = 2 * links * (DIM * DIM + DIM) + 2 * time_dim
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(teacher) == count(base) + expected_new
    assert sum(p.numel() for p in teacher.control_parameters()) == expected_new

    # One storage per parameter (no module registered twice), none shared with the base model.
    teacher_ptrs = [p.data_ptr() for p in teacher.parameters()]
    assert len(teacher_ptrs) == len(set(teacher_ptrs))
    assert not set(teacher_ptrs) & {p.data_ptr() for p in base.parameters()}
    for name, tensor in base_state.items():
        assert torch.equal(teacher_state[name], tensor), name


def test_save_and_load_round_trip(base_and_teacher, backbone, tmp_path):
    base, _ = base_and_teacher
    teacher = ControlLinkTransformer3DModel.from_transformer(base, control_link_layers=[1])
    _perturb_(teacher.control_parameters())
    latents, perception, text = _latents(backbone), _latents(backbone, seed=2), _text()
    with torch.no_grad():
        expected = teacher(latents, perception, text, 400, perception_timestep=0)

    teacher.save_pretrained(tmp_path / "teacher")  # safetensors refuses shared tensors: this proves there are none
    assert (tmp_path / "teacher" / "diffusion_pytorch_model.safetensors").is_file()
    for loaded in (
        type(teacher).from_pretrained(tmp_path / "teacher"),
        ControlLinkTransformer3DModel.from_pretrained(tmp_path / "teacher"),
    ):
        assert type(loaded) is type(teacher) and loaded.linked_layers == [1]
        assert loaded.config.control_link_layers == [1]
        with torch.no_grad():
            out = loaded(latents, perception, text, 400, perception_timestep=0)
        assert torch.equal(out.sample, expected.sample)
        assert torch.equal(out.perception_sample, expected.perception_sample)

    # A base checkpoint, through the dispatcher or the concrete class, becomes a zero-link teacher equal to the
    # base (never links left uninitialised on the meta device).
    base.save_pretrained(tmp_path / "base")
    with torch.no_grad():
        reference = _base_forward(base, backbone, latents, text, torch.tensor([400, 400]))
    for from_base in (
        ControlLinkTransformer3DModel.from_pretrained(tmp_path / "base", control_link_layers=[0]),
        type(teacher).from_pretrained(tmp_path / "base"),
    ):
        assert type(from_base) is type(teacher)
        assert all(not p.is_meta and torch.count_nonzero(p) == 0 for p in from_base.control_parameters())
        with torch.no_grad():
            out = from_base(latents, perception, text, 400)
        torch.testing.assert_close(out.sample, reference, atol=1e-6, rtol=0)

    # A teacher checkpoint missing some control parameters is refused.
    weights = tmp_path / "teacher" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    del state["task_embedding.weight"]
    save_file(state, weights)
    with pytest.raises(MMPhysInputError, match="only some of the teacher's control parameters"):
        type(teacher).from_pretrained(tmp_path / "teacher")


def test_teacher_round_trips_as_a_pipeline_component(base_and_teacher, tmp_path):
    """diffusers pipelines record ["<module path>", "<class>"] for the teacher and must load it back."""
    import json

    from diffusers import DiffusionPipeline

    class TeacherHolderPipeline(DiffusionPipeline):
        def __init__(self, transformer):
            super().__init__()
            self.register_modules(transformer=transformer)

    _, teacher = base_and_teacher
    _perturb_(teacher.control_parameters())
    TeacherHolderPipeline(transformer=teacher).save_pretrained(tmp_path)
    library, class_name = json.loads((tmp_path / "model_index.json").read_text())["transformer"]
    assert library == type(teacher).__module__ and class_name == type(teacher).__name__
    loaded = TeacherHolderPipeline.from_pretrained(tmp_path).transformer
    assert type(loaded) is type(teacher)
    for (name, p), (_, q) in zip(loaded.state_dict().items(), teacher.state_dict().items()):
        assert torch.equal(p, q), name


def test_peft_lora_adapter_saves_and_loads(base_and_teacher, backbone):
    _, teacher = base_and_teacher
    lora = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=True)
    teacher.add_adapter(lora)
    lora_names = [n for n, _ in teacher.named_parameters() if "lora_" in n]
    assert lora_names and all(".attn" in n for n in lora_names)  # only backbone attention, never the links
    _perturb_([p for n, p in teacher.named_parameters() if "lora_B" in n])
    lora_state = get_peft_model_state_dict(teacher)
    assert lora_state and all("lora_" in k for k in lora_state)

    latents, perception, text = _latents(backbone), _latents(backbone, seed=2), _text()
    with torch.no_grad():
        expected = teacher(latents, perception, text, 600).sample
        unscaled = teacher(latents, perception, text, 600, attention_kwargs={"scale": 0.0}).sample

    fresh = ControlLinkTransformer3DModel.from_transformer(_base(backbone))  # same seed: same backbone
    fresh.add_adapter(lora)
    with torch.no_grad():
        assert not torch.allclose(fresh(latents, perception, text, 600).sample, expected, atol=1e-4)
        torch.testing.assert_close(fresh(latents, perception, text, 600).sample, unscaled, atol=1e-6, rtol=0)
    result = set_peft_model_state_dict(fresh, lora_state)
    assert not getattr(result, "unexpected_keys", [])
    with torch.no_grad():
        torch.testing.assert_close(fresh(latents, perception, text, 600).sample, expected, atol=1e-6, rtol=0)


def test_diffusers_lora_loader_applies_to_the_teacher(base_and_teacher, backbone, tmp_path):
    from diffusers import CogVideoXPipeline, WanPipeline

    pipeline_cls = CogVideoXPipeline if backbone == "cogvideox" else WanPipeline
    _, teacher = base_and_teacher
    teacher.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    _perturb_([p for n, p in teacher.named_parameters() if "lora_B" in n])
    pipeline_cls.save_lora_weights(tmp_path, transformer_lora_layers=get_peft_model_state_dict(teacher))

    latents, perception, text = _latents(backbone), _latents(backbone, seed=2), _text()
    with torch.no_grad():
        expected = teacher(latents, perception, text, 600)
    fresh = ControlLinkTransformer3DModel.from_transformer(_base(backbone))
    state_dict = pipeline_cls.lora_state_dict(tmp_path)
    pipeline_cls.load_lora_into_transformer(state_dict, transformer=fresh)
    with torch.no_grad():
        out = fresh(latents, perception, text, 600)
    torch.testing.assert_close(out.sample, expected.sample, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.perception_sample, expected.perception_sample, atol=1e-6, rtol=0)


def test_gradient_checkpointing_same_output_and_grads_reach_links(base_and_teacher, backbone):
    _, teacher = base_and_teacher
    teacher.train()
    latents, perception, text = _latents(backbone), _latents(backbone, seed=2), _text()

    def loss_and_grads():
        teacher.zero_grad(set_to_none=True)
        out = teacher(latents, perception, text, torch.tensor([300, 700]), perception_timestep=torch.tensor([0, 50]))
        loss = out.sample.square().mean() + out.perception_sample.square().mean()
        loss.backward()
        return out, {n: p.grad.clone() for n, p in teacher.named_parameters() if p.grad is not None}

    plain_out, plain_grads = loss_and_grads()
    teacher.enable_gradient_checkpointing()
    assert teacher.gradient_checkpointing
    checkpoint_fn, checkpointed = teacher._gradient_checkpointing_func, []

    def counting_checkpoint(block, *args):  # spy: the real checkpoint function still runs
        checkpointed.append(block)
        return checkpoint_fn(block, *args)

    teacher._gradient_checkpointing_func = counting_checkpoint
    ckpt_out, ckpt_grads = loss_and_grads()
    assert len(checkpointed) == 2  # every block went through activation checkpointing

    torch.testing.assert_close(ckpt_out.sample, plain_out.sample, atol=1e-6, rtol=0)
    torch.testing.assert_close(ckpt_out.perception_sample, plain_out.perception_sample, atol=1e-6, rtol=0)
    for prefix in ("perception_to_rgb_links.0.weight", "rgb_to_perception_links.1.weight", "task_embedding.weight"):
        assert prefix in ckpt_grads and ckpt_grads[prefix].abs().sum() > 0, prefix
    assert plain_grads.keys() == ckpt_grads.keys()
    for name, grad in plain_grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_per_sample_timesteps_and_hidden_states(base_and_teacher, backbone):
    base, teacher = base_and_teacher
    teacher = ControlLinkTransformer3DModel.from_transformer(base, control_link_layers=[0])
    _perturb_(teacher.control_parameters())
    batch = 3
    latents, perception, text = _latents(backbone, batch), _latents(backbone, batch, seed=2), _text(batch)
    timestep, perception_t = torch.tensor([900, 0, 450]), torch.tensor([0, 900, 450])
    with torch.no_grad():
        out = teacher(
            latents, perception, text, timestep, perception_timestep=perception_t, output_hidden_states_at=[1, 0]
        )
        # Each sample only depends on its own timesteps: one-sample runs give the same predictions.
        for i in range(batch):
            one = slice(i, i + 1)
            single = teacher(
                latents[one], perception[one], text[one], timestep[i], perception_timestep=perception_t[i]
            )
            torch.testing.assert_close(single.sample[0], out.sample[i], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(single.perception_sample[0], out.perception_sample[i], atol=1e-5, rtol=1e-5)
        # perception_timestep=None means the RGB timestep; a scalar means every sample.
        same_t = teacher(latents, perception, text, 450)
        explicit = teacher(latents, perception, text, torch.full((batch,), 450), perception_timestep=450)
        as_tuple = teacher(latents, perception, text, 450, output_hidden_states_at=[1], return_dict=False)
        as_output = teacher(latents, perception, text, 450, output_hidden_states_at=[1])
    assert torch.equal(same_t.sample, explicit.sample)
    assert torch.equal(same_t.perception_sample, explicit.perception_sample)

    num_tokens = 2 * (8 // 2) * (8 // 2)  # frames * (H / p) * (W / p), text tokens excluded
    assert len(out.hidden_states) == 2
    assert all(h.shape == (batch, num_tokens, DIM) for h in out.hidden_states)
    assert not torch.equal(out.hidden_states[0], out.hidden_states[1])
    assert len(as_tuple) == 3 and torch.equal(as_tuple[0], same_t.sample)
    assert torch.equal(as_tuple[1], same_t.perception_sample)
    assert len(as_tuple[2]) == 1 and torch.equal(as_tuple[2][0], as_output.hidden_states[0])
    assert len(teacher(latents, perception, text, 450, return_dict=False)) == 2


def test_frozen_base_gives_frozen_backbone_and_trainable_links(backbone):
    base = _base(backbone).requires_grad_(False)
    teacher = ControlLinkTransformer3DModel.from_transformer(base)
    trainable = {name for name, p in teacher.named_parameters() if p.requires_grad}
    assert trainable == {name for name, _ in teacher.named_parameters() if name not in base.state_dict()}


def test_from_transformer_matches_dtype(backbone):
    base = _base(backbone).to(torch.bfloat16)
    if backbone == "wan":
        base.condition_embedder.time_embedder.float()  # what `_keep_in_fp32_modules` does when loading in bf16
    teacher = ControlLinkTransformer3DModel.from_transformer(base)
    for (name, p), (base_name, base_p) in zip(teacher.named_parameters(), base.named_parameters()):
        assert name == base_name and p.dtype == base_p.dtype and p.device == base_p.device
    assert all(p.dtype == torch.bfloat16 for p in teacher.control_parameters())
    assert all(not t.is_meta for t in [*teacher.parameters(), *teacher.buffers()])
    with torch.no_grad():
        out = teacher(_latents(backbone).bfloat16(), _latents(backbone, seed=2).bfloat16(), _text().bfloat16(), 10)
    assert out.sample.dtype == torch.bfloat16 and torch.isfinite(out.sample.float()).all()


def test_bad_inputs_raise_clear_errors(base_and_teacher, backbone):
    base, teacher = base_and_teacher
    latents, text = _latents(backbone), _text()

    with pytest.raises(MMPhysInputError, match="perception_hidden_states.*differ"):
        teacher(latents, _latents(backbone, frames=3), text, 1)
    odd = _latents(backbone, size=9)
    with pytest.raises(MMPhysInputError, match="height 9.*not divisible by the patch size 2"):
        teacher(odd, odd, text, 1)
    with pytest.raises(MMPhysInputError, match="`timestep` has 3 entries.*batch size 2"):
        teacher(latents, latents, text, torch.tensor([1, 2, 3]))
    with pytest.raises(MMPhysInputError, match="`perception_timestep` has 3 entries"):
        teacher(latents, latents, text, 1, perception_timestep=torch.tensor([1, 2, 3]))
    with pytest.raises(MMPhysInputError, match="output_hidden_states_at.*out of range"):
        teacher(latents, latents, text, 1, output_hidden_states_at=[2])
    with pytest.raises(MMPhysInputError, match="encoder_hidden_states"):
        teacher(latents, latents, _text(batch=1), 1)

    with pytest.raises(MMPhysInputError, match=r"control_link_layers=\[0, 2\].*\[0, 1\]"):
        ControlLinkTransformer3DModel.from_transformer(base, control_link_layers=[0, 2])
    teacher_cls = type(teacher)
    config = {k: v for k, v in base.config.items() if not k.startswith("_")}
    with pytest.raises(MMPhysInputError, match="outside the backbone's blocks"):
        teacher_cls(**config, control_link_layers=[-1])
    with pytest.raises(MMPhysInputError, match="already a teacher"):
        ControlLinkTransformer3DModel.from_transformer(teacher)
    with pytest.raises(TypeError, match="dispatcher"):
        ControlLinkTransformer3DModel()
    if backbone == "wan":
        with pytest.raises(MMPhysInputError, match="image-to-video"):
            teacher(latents, latents, text, 1, encoder_hidden_states_image=torch.zeros(2, 4, 8))


def test_unsupported_base_class_is_rejected(tmp_path):
    from diffusers import SD3Transformer2DModel

    other = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=16, out_channels=4,
    )
    supported = "CogVideoXTransformer3DModel, WanTransformer3DModel"
    with pytest.raises(MMPhysInputError, match=f"SD3Transformer2DModel.*{supported}"):
        ControlLinkTransformer3DModel.from_transformer(other)
    other.save_pretrained(tmp_path)
    with pytest.raises(MMPhysInputError, match="_class_name='SD3Transformer2DModel'"):
        ControlLinkTransformer3DModel.from_pretrained(tmp_path)
    with pytest.raises(MMPhysInputError, match="No transformer config.json"):
        ControlLinkTransformer3DModel.from_pretrained(tmp_path / "missing")


def test_cogvideox_rope_and_temporal_patch_config():
    """CogVideoX-5B/1.5-style path: rotary embeddings from the pipeline and a temporal patch size."""
    from diffusers.models.embeddings import get_3d_rotary_pos_embed

    base = _base(
        "cogvideox", attention_head_dim=16, use_rotary_positional_embeddings=True, patch_size_t=2, sample_frames=9
    )
    teacher = ControlLinkTransformer3DModel.from_transformer(base, control_link_layers=[1])
    latents, perception, text = _latents("cogvideox", frames=4), _latents("cogvideox", frames=4, seed=2), _text()
    rotary = get_3d_rotary_pos_embed(16, ((0, 0), (4, 4)), (4, 4), temporal_size=2)
    with torch.no_grad():
        reference = base(latents, text, torch.tensor([50, 60]), image_rotary_emb=rotary).sample
        out = teacher(
            latents, perception, text, torch.tensor([50, 60]), perception_timestep=0, image_rotary_emb=rotary
        )
    assert out.sample.shape == latents.shape
    torch.testing.assert_close(out.sample, reference, atol=1e-6, rtol=0)
    with pytest.raises(MMPhysInputError, match="image_rotary_emb"):
        teacher(latents, perception, text, 1)
    odd_frames = _latents("cogvideox", frames=3)
    with pytest.raises(MMPhysInputError, match="frame count 3.*patch size 2"):
        teacher(odd_frames, odd_frames, text, 1, image_rotary_emb=rotary)
