"""Student and teacher pipelines on the tiny CogVideoX and Wan configs (CPU, 2 steps, 9 frames, 32 px)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import PIL.Image
import pytest
import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from mmphys_diffusers.backbones import get_backbone_adapter, tiny_components
from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.pipelines import MMPhysVideoPipeline, MMPhysVideoTeacherPipeline

TINY = ["tiny-cogvideox", "tiny-wan"]
SIZE = dict(num_frames=9, height=32, width=32, max_sequence_length=16, num_inference_steps=2)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def student(name, seed=0):
    return MMPhysVideoPipeline(**tiny_components(name, seed=seed))


def teacher(name, seed=0):
    comps = tiny_components(name, seed=seed)
    comps["transformer"] = get_backbone_adapter(name).build_teacher(comps["transformer"])
    return MMPhysVideoTeacherPipeline(**comps)


def perturb_links(pipe, scale=0.05):
    """Make the zero-initialised control links non-zero so the two streams really talk."""
    g = gen(7)
    with torch.no_grad():
        for name, param in pipe.transformer.named_parameters():
            if "links" in name or "task_embedding" in name:
                param.copy_(torch.randn(param.shape, generator=g) * scale)


class CallCounter:
    """Counts forward calls of a module."""

    def __init__(self, module):
        self.calls = 0
        module.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.calls += 1


# ---------------------------------------------------------------------------- student
@pytest.mark.parametrize("name", TINY)
def test_student_matches_stock_pipeline_bit_for_bit(name):
    comps = tiny_components(name)
    stock = get_backbone_adapter(name).stock_pipeline_class(**comps)
    pipe = MMPhysVideoPipeline(**comps)
    assert isinstance(pipe, get_backbone_adapter(name).lora_loader_mixin)
    kw = dict(SIZE, prompt=["a ball falls", "two cubes collide"], negative_prompt="blurry", guidance_scale=3.0, output_type="np")
    ours = pipe(**kw, generator=gen()).frames
    theirs = stock(**kw, generator=gen()).frames
    assert ours.shape == (2, 9, 32, 32, 3)
    np.testing.assert_array_equal(ours, theirs)


def test_student_matches_stock_with_cogvideox_dpm_scheduler():
    """The second-order CogVideoX DPM solver needs the previous x0 prediction (adapter.scheduler_step)."""
    from diffusers import CogVideoXDPMScheduler

    comps = tiny_components("tiny-cogvideox")
    comps["scheduler"] = CogVideoXDPMScheduler.from_config(comps["scheduler"].config)
    kw = dict(SIZE, num_inference_steps=3, prompt="a ball falls", guidance_scale=3.0, output_type="latent")
    ours = MMPhysVideoPipeline(**comps)(**kw, generator=gen()).frames
    theirs = get_backbone_adapter("cogvideox").stock_pipeline_class(**comps)(**kw, generator=gen()).frames
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("name", TINY)
def test_student_output_types(name):
    pipe = student(name)
    kw = dict(SIZE, prompt="a ball falls", guidance_scale=1.0)
    out_np = pipe(**kw, output_type="np", generator=gen()).frames
    assert out_np.shape == (1, 9, 32, 32, 3) and out_np.dtype == np.float32
    assert 0.0 <= out_np.min() and out_np.max() <= 1.0
    out_pt = pipe(**kw, output_type="pt", generator=gen()).frames
    assert out_pt.shape == (1, 9, 3, 32, 32)
    np.testing.assert_allclose(out_pt.permute(0, 1, 3, 4, 2).numpy(), out_np, atol=1e-6)
    out_pil = pipe(**kw, output_type="pil", generator=gen()).frames
    assert len(out_pil) == 1 and len(out_pil[0]) == 9 and isinstance(out_pil[0][0], PIL.Image.Image)
    assert out_pil[0][0].size == (32, 32)
    (latents,) = pipe(**kw, output_type="latent", generator=gen(), return_dict=False)
    assert tuple(latents.shape) == get_backbone_adapter(name).latent_shape(1, 9, 32, 32, pipe.vae, pipe.transformer)


@pytest.mark.parametrize("name", TINY)
def test_cfg_on_off_and_transformer_calls(name):
    pipe = student(name)
    counter = CallCounter(pipe.transformer)
    kw = dict(SIZE, prompt="a ball falls", output_type="latent")
    off = pipe(**kw, guidance_scale=1.0, generator=gen()).frames
    assert counter.calls == 2  # one call per step
    counter.calls = 0
    on = pipe(**kw, guidance_scale=5.0, negative_prompt="static", generator=gen()).frames
    # CogVideoX batches cond+uncond into one call; Wan runs them one after the other (as the stock pipelines)
    assert counter.calls == (2 if pipe.backbone.cfg_batched else 4)
    assert not torch.allclose(on, off)


@pytest.mark.parametrize("name", TINY)
def test_batch_num_videos_per_prompt_and_generator_list(name):
    pipe = student(name)
    prompts = ["a ball falls", "two cubes collide"]
    generators = [gen(s) for s in (10, 11, 12, 13)]
    batch = pipe(prompts, **SIZE, guidance_scale=2.0, num_videos_per_prompt=2, generator=generators, output_type="latent").frames
    assert batch.shape[0] == 4
    # video j is prompt j // 2 with generator j: equal to generating it alone
    for j, seed in enumerate((10, 11, 12, 13)):
        alone = pipe(prompts[j // 2], **SIZE, guidance_scale=2.0, generator=gen(seed), output_type="latent").frames
        torch.testing.assert_close(batch[j : j + 1], alone, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(batch[0], batch[1])


@pytest.mark.parametrize("name", TINY)
def test_generator_determinism(name):
    pipe = student(name)
    kw = dict(SIZE, prompt="a ball falls", guidance_scale=2.0, output_type="np")
    a = pipe(**kw, generator=gen(1)).frames
    b = pipe(**kw, generator=gen(1)).frames
    c = pipe(**kw, generator=gen(2)).frames
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_callback_on_step_end_reads_replaces_and_interrupts():
    pipe = student("tiny-wan")
    seen = []

    def zero_latents(p, step, t, tensors):
        seen.append((step, int(t), sorted(tensors)))
        return {"latents": torch.zeros_like(tensors["latents"])} if step == 1 else {}

    out = pipe("a ball falls", **SIZE, guidance_scale=2.0, output_type="latent", generator=gen(),
               callback_on_step_end=zero_latents, callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"]).frames
    assert [s for s, _, _ in seen] == [0, 1] and seen[0][2] == ["latents", "prompt_embeds"]
    assert seen[0][1] > seen[1][1]  # timesteps go down
    assert torch.count_nonzero(out) == 0

    def interrupt(p, step, t, tensors):
        p._interrupt = True
        return {}

    counter = CallCounter(pipe.transformer)
    pipe("a ball falls", **dict(SIZE, num_inference_steps=4), guidance_scale=1.0, output_type="latent", callback_on_step_end=interrupt)
    assert counter.calls == 1


def test_vae_tiling_and_slicing_passthrough():
    pipe = student("tiny-cogvideox")
    pipe.enable_vae_tiling()
    assert pipe.vae.use_tiling
    pipe.disable_vae_tiling()
    pipe.enable_vae_slicing()
    assert pipe.vae.use_slicing
    pipe.disable_vae_slicing()
    assert not pipe.vae.use_tiling and not pipe.vae.use_slicing


@pytest.mark.parametrize("name", TINY)
def test_class_loads_stock_folder(name, tmp_path):
    comps = tiny_components(name)
    get_backbone_adapter(name).stock_pipeline_class(**comps).save_pretrained(tmp_path)
    pipe = MMPhysVideoPipeline.from_pretrained(tmp_path)
    assert isinstance(pipe, MMPhysVideoPipeline) and type(pipe.transformer) is type(comps["transformer"])
    kw = dict(SIZE, prompt="a ball falls", guidance_scale=2.0, output_type="np")
    reference = MMPhysVideoPipeline(**comps)(**kw, generator=gen()).frames
    np.testing.assert_allclose(pipe(**kw, generator=gen()).frames, reference, atol=1e-4)


# ---------------------------------------------------------------------------- saving / loading
ROUND_TRIP_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch
    from diffusers import DiffusionPipeline
    kw = json.loads(sys.argv[3])
    student = DiffusionPipeline.from_pretrained(sys.argv[1])
    frames = student(**kw, output_type="np", generator=torch.Generator().manual_seed(0)).frames
    result = {"student_class": type(student).__name__,
              "student_err": float(np.abs(frames - np.load(sys.argv[1] + "/ref.npy")).max()),
              "mmphys_imported_by_student": "mmphys_diffusers" in sys.modules}
    teacher = DiffusionPipeline.from_pretrained(sys.argv[2], trust_remote_code=True)
    out = teacher(**kw, output_type="np", perception_cue=None, generator=torch.Generator().manual_seed(0))
    result["teacher_class"] = type(teacher).__name__
    result["teacher_transformer"] = type(teacher.transformer).__name__
    result["teacher_err"] = float(np.abs(out.perception_frames - np.load(sys.argv[2] + "/ref.npy")).max())
    print("RESULT" + json.dumps(result))
    """
)


@pytest.mark.parametrize("name", TINY)
def test_round_trip_stock_loader_and_trust_remote_code_in_clean_process(name, tmp_path):
    kw = dict(SIZE, prompt="a ball falls", guidance_scale=2.0)
    pipe = student(name)
    pipe.save_pretrained(tmp_path / "student")
    index = json.loads((tmp_path / "student" / "model_index.json").read_text())
    assert index["_class_name"] == get_backbone_adapter(name).stock_pipeline_class_name
    assert index["transformer"][0] == "diffusers"
    np.save(tmp_path / "student" / "ref.npy", pipe(**kw, output_type="np", generator=gen()).frames)

    tpipe = teacher(name)
    perturb_links(tpipe)
    tpipe.save_pretrained(tmp_path / "teacher")
    index = json.loads((tmp_path / "teacher" / "model_index.json").read_text())
    assert index["_class_name"] == ["mmphys_teacher_pipeline", "MMPhysVideoTeacherPipeline"]
    assert index["transformer"][0].startswith("mmphys_diffusers.models.")
    assert (tmp_path / "teacher" / "mmphys_teacher_pipeline.py").is_file()
    ref = tpipe(**kw, output_type="np", perception_cue=None, generator=gen()).perception_frames
    np.save(tmp_path / "teacher" / "ref.npy", ref)

    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP_SCRIPT, str(tmp_path / "student"), str(tmp_path / "teacher"), json.dumps(kw)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert result["student_class"] == get_backbone_adapter(name).stock_pipeline_class_name
    assert result["mmphys_imported_by_student"] is False
    assert result["student_err"] < 1e-4
    assert result["teacher_class"].startswith("MMPhysVideoTeacherPipeline")
    assert result["teacher_transformer"].startswith("ControlLink")
    assert result["teacher_err"] < 1e-4


@pytest.mark.parametrize("name", TINY)
def test_teacher_round_trip_through_class(name, tmp_path, monkeypatch):
    # diffusers copies the folder's module into its modules cache before importing it: give each test its
    # own cache so parallel workers never write the same file.
    monkeypatch.setattr("diffusers.utils.dynamic_modules_utils.HF_MODULES_CACHE", str(tmp_path / "modules"))
    pipe = teacher(name)
    perturb_links(pipe)
    pipe.save_pretrained(tmp_path / "teacher")
    kw = dict(SIZE, prompt="a ball falls", guidance_scale=2.0, output_type="np", perception_cue=None)
    reloaded = MMPhysVideoTeacherPipeline.from_pretrained(tmp_path / "teacher")
    assert type(reloaded.transformer) is type(pipe.transformer)
    a, b = pipe(**kw, generator=gen()), reloaded(**kw, generator=gen())
    np.testing.assert_allclose(a.frames, b.frames, atol=1e-4)
    np.testing.assert_allclose(a.perception_frames, b.perception_frames, atol=1e-4)
    # a helper module that is not the one we write needs the caller's explicit trust
    module = tmp_path / "teacher" / "mmphys_teacher_pipeline.py"
    module.write_text("print('other code')\n" + module.read_text())
    with pytest.raises(ValueError, match="trust_remote_code"):
        MMPhysVideoTeacherPipeline.from_pretrained(tmp_path / "teacher")
    assert (tmp_path / "modules").is_dir()  # the per-test cache was used


# ---------------------------------------------------------------------------- teacher modes
@pytest.mark.parametrize("name", TINY)
def test_teacher_modes(name):
    pipe = teacher(name)
    kw = dict(SIZE, prompt="a ball falls", guidance_scale=3.0)
    # zero-initialised links: the joint RGB stream is the student (and the perception stream's own
    # multistep scheduler state does not leak into the RGB one)
    joint = pipe(**kw, output_type="np", generator=gen())
    reference = MMPhysVideoPipeline(**{**pipe.components, "transformer": tiny_components(name)["transformer"]})(
        **kw, output_type="np", generator=gen()
    ).frames
    np.testing.assert_allclose(joint.frames, reference, atol=1e-4)
    assert joint.perception_frames.shape == joint.frames.shape == (1, 9, 32, 32, 3)
    assert isinstance(joint.perception, list) and len(joint.perception) == 1
    assert all(isinstance(v, np.ndarray) and v.shape[0] == 9 for v in joint.perception[0].values())

    perturb_links(pipe)
    clip = torch.rand(9, 3, 32, 32, generator=gen(3))
    adapter = pipe.backbone
    with torch.no_grad():
        recon = adapter.decode_latents(pipe.vae, adapter.encode_video(pipe.vae, clip.permute(1, 0, 2, 3)[None] * 2 - 1))
    recon = pipe.video_processor.postprocess_video(recon, output_type="np")

    control = pipe(mode="control", perception_video=clip, prompt="a ball falls", num_inference_steps=2,
                   max_sequence_length=16, guidance_scale=3.0, output_type="np", perception_cue=None, generator=gen())
    np.testing.assert_allclose(control.perception_frames, recon, atol=1e-5)  # the clean condition is kept
    other = pipe(mode="control", perception_video=1 - clip, prompt="a ball falls", num_inference_steps=2,
                 max_sequence_length=16, guidance_scale=3.0, output_type="np", perception_cue=None, generator=gen())
    assert np.abs(control.frames - other.frames).max() > 1e-4  # RGB follows the perception video

    readout = pipe(mode="readout", video=[clip, 1 - clip], prompt=["a", "b"], num_inference_steps=2, max_sequence_length=16,
                   guidance_scale=1.0, perception_guidance_scale=2.0, output_type="pt", generator=gen())
    assert readout.frames.shape == readout.perception_frames.shape == (2, 9, 3, 32, 32)
    np.testing.assert_allclose(readout.frames[0].permute(0, 2, 3, 1).numpy(), recon[0], atol=1e-5)
    assert len(readout.perception) == 2
    (rgb, perception, cues) = pipe(mode="readout", video=clip, prompt="a", num_inference_steps=2, max_sequence_length=16,
                                   output_type="latent", return_dict=False, generator=gen())
    assert rgb.shape == perception.shape and cues is None


def test_teacher_guidance_scales_are_separate():
    pipe = teacher("tiny-wan")
    perturb_links(pipe)
    kw = dict(SIZE, prompt="a ball falls", output_type="latent", perception_cue=None)
    base = pipe(**kw, guidance_scale=3.0, perception_guidance_scale=3.0, generator=gen())
    changed = pipe(**kw, guidance_scale=3.0, perception_guidance_scale=1.0, generator=gen())
    assert not torch.allclose(base.perception_frames, changed.perception_frames)
    seen = []
    pipe(**kw, guidance_scale=2.0, generator=gen(), callback_on_step_end=lambda p, i, t, d: seen.append(sorted(d)) or {},
         callback_on_step_end_tensor_inputs=["latents", "perception_latents"])
    assert seen == [["latents", "perception_latents"]] * 2


# ---------------------------------------------------------------------------- LoRA
@pytest.mark.parametrize("name", TINY)
def test_lora_load_scale_and_fuse(name, tmp_path):
    pipe = student(name)
    kw = dict(SIZE, prompt="a ball falls", guidance_scale=1.0, output_type="np")
    base = pipe(**kw, generator=gen()).frames
    trained = tiny_components(name)["transformer"]
    trained.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False))
    type(pipe).save_lora_weights(tmp_path, transformer_lora_layers=get_peft_model_state_dict(trained))
    assert (tmp_path / "pytorch_lora_weights.safetensors").is_file()

    pipe.load_lora_weights(tmp_path, adapter_name="phys")
    with_lora = pipe(**kw, generator=gen()).frames
    assert np.abs(with_lora - base).max() > 1e-3
    pipe.set_adapters(["phys"], [0.0])
    np.testing.assert_allclose(pipe(**kw, generator=gen()).frames, base, atol=1e-6)
    pipe.set_adapters(["phys"], [1.0])
    pipe.fuse_lora()
    np.testing.assert_allclose(pipe(**kw, generator=gen()).frames, with_lora, atol=1e-4)

    # the same LoRA applies to the teacher (identical backbone parameter names)
    tpipe = teacher(name)
    t_base = tpipe(**kw, perception_cue=None, generator=gen()).frames
    tpipe.load_lora_weights(tmp_path)
    assert np.abs(tpipe(**kw, perception_cue=None, generator=gen()).frames - t_base).max() > 1e-3


# ---------------------------------------------------------------------------- bad inputs
BAD_STUDENT_CALLS = [
    (dict(num_frames=8), r"num_frames=8 .* k\*4\+1"),
    (dict(height=40), r"height=40 .* multiple of 16"),
    (dict(width=20), r"width=20"),
    (dict(prompt=["a", "b"], negative_prompt=["x"]), r"negative_prompt has 1 entries but there are 2 prompts"),
    (dict(prompt=None), r"prompt .* or prompt_embeds .* is required"),
    (dict(prompt=3), r"prompt must be a str or a list of str"),
    (dict(output_type="mp4"), r"output_type='mp4'"),
    (dict(num_videos_per_prompt=0), r"num_videos_per_prompt"),
    (dict(latents=torch.zeros(1, 2, 3)), r"latents has shape \(1, 2, 3\); expected"),
    (dict(callback_on_step_end_tensor_inputs=["noise"]), r"callback_on_step_end_tensor_inputs has \['noise'\]"),
    (dict(generator=[torch.Generator(), torch.Generator()]), r"generator is a list of 2"),
]


@pytest.mark.parametrize("bad,message", BAD_STUDENT_CALLS)
def test_student_bad_inputs(bad, message):
    pipe = student("tiny-wan")
    kw = dict(SIZE, prompt="a ball falls", guidance_scale=2.0, output_type="latent")
    kw.update(bad)
    with pytest.raises(MMPhysInputError, match=message):
        pipe(**kw)


def test_teacher_bad_inputs():
    pipe = teacher("tiny-cogvideox")
    kw = dict(SIZE, prompt="a ball falls", output_type="latent")
    clip = torch.rand(9, 3, 32, 32)
    cases = [
        (dict(mode="forward"), r"mode='forward'; expected one of \['joint', 'control', 'readout'\]"),
        (dict(mode="control"), r"needs perception_video"),
        (dict(mode="readout"), r"needs video"),
        (dict(mode="joint", video=clip), r"video is the clean input of mode='readout'"),
        (dict(mode="readout", video=clip, perception_video=clip), r"perception_video is the clean input of mode='control'"),
        (dict(mode="readout", video=[clip, clip, clip], prompt=["a", "b"]), r"video holds 3 videos but there are 2 prompts"),
        (dict(mode="readout", video=torch.rand(8, 3, 32, 32)), r"num_frames=8 cannot be encoded"),
        (dict(mode="control", perception_video=clip, num_frames=5), r"num_frames=5 but perception_video has 9 frames"),
        (dict(latents=torch.zeros(1, 3, 4, 4, 4), perception_latents=torch.zeros(1, 3, 4, 8, 8)), r"must have the same shape"),
        (dict(perception_latents=torch.zeros(1, 3, 4, 8, 8)), r"perception_latents has shape"),
        (dict(perception_cue="smell", output_type="np"), r"unknown cue 'smell'"),
        (dict(mode="readout", video=clip, prompt=7), r"prompt must be a str or a list of str"),
        (dict(perception_meta=[{}, {}]), r"perception_meta has 2 entries; expected one per output video \(1\)"),
    ]
    for bad, message in cases:
        call = {**kw, **bad}
        if "video" in bad or "perception_video" in bad:
            for key in ("num_frames", "height", "width"):
                if key not in bad:
                    call.pop(key)
        with pytest.raises(MMPhysInputError, match=message):
            pipe(**call)
    with pytest.raises(MMPhysInputError, match="needs a ControlLink teacher transformer"):
        MMPhysVideoTeacherPipeline(**tiny_components("tiny-wan"))
    with pytest.raises(MMPhysInputError, match="use MMPhysVideoTeacherPipeline"):
        MMPhysVideoPipeline(**pipe.components)


def test_model_cpu_offload_hooks_keep_outputs():
    """`enable_model_cpu_offload` (here onto "cpu" so it runs without a GPU): the offload hooks wrap every
    component, the VAE encode/decode go through the execution device, and the result is unchanged."""
    pipe = teacher("tiny-wan")
    perturb_links(pipe)
    clip = torch.rand(9, 3, 32, 32, generator=gen(3))
    kw = dict(mode="control", perception_video=clip, prompt="a ball falls", num_inference_steps=2, max_sequence_length=16,
              guidance_scale=2.0, output_type="np", perception_cue=None)
    reference = pipe(**kw, generator=gen())
    pipe.enable_model_cpu_offload(device="cpu")
    assert all(hasattr(getattr(pipe, name), "_hf_hook") for name in ("text_encoder", "transformer", "vae"))
    offloaded = pipe(**kw, generator=gen())
    np.testing.assert_allclose(offloaded.frames, reference.frames, atol=1e-5)
    np.testing.assert_allclose(offloaded.perception_frames, reference.perception_frames, atol=1e-5)


def test_from_pipe_between_stock_student_and_teacher():
    comps = tiny_components("tiny-cogvideox")
    stock = get_backbone_adapter("cogvideox").stock_pipeline_class(**comps)
    pipe = MMPhysVideoPipeline.from_pipe(stock)
    assert isinstance(pipe, MMPhysVideoPipeline) and pipe.transformer is comps["transformer"]
    assert type(stock).from_pipe(pipe).transformer is comps["transformer"]
    teacher_transformer = get_backbone_adapter("cogvideox").build_teacher(comps["transformer"])
    tpipe = MMPhysVideoTeacherPipeline.from_pipe(pipe, transformer=teacher_transformer)
    assert isinstance(tpipe, MMPhysVideoTeacherPipeline) and tpipe.vae is comps["vae"]
    assert MMPhysVideoTeacherPipeline.from_pipe(tpipe).transformer is teacher_transformer


def test_teacher_config_carries_its_perception_codec_settings(tmp_path):
    """perception_cue / perception_meta live in model_index.json and are the call's defaults after loading."""
    import json

    from diffusers import DiffusionPipeline

    from mmphys_diffusers.backbones import get_backbone_adapter, tiny_components
    from mmphys_diffusers.errors import MMPhysInputError
    from mmphys_diffusers.pipelines import MMPhysVideoTeacherPipeline

    comps = tiny_components("tiny-wan", seed=1)
    comps["transformer"] = get_backbone_adapter("tiny-wan").build_teacher(comps["transformer"])
    meta = {"near": 4.0, "far": 16.0, "max_flow": 5.0, "max_instances": 8}
    MMPhysVideoTeacherPipeline(**comps, perception_meta=meta).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "model_index.json").read_text())["perception_meta"] == meta
    for pipe in (MMPhysVideoTeacherPipeline.from_pretrained(tmp_path), DiffusionPipeline.from_pretrained(tmp_path, trust_remote_code=True)):
        assert pipe.config.perception_cue == "unified" and pipe.config.perception_meta == meta
    kw = dict(num_frames=5, height=32, width=32, num_inference_steps=2, output_type="np")
    pipe = MMPhysVideoTeacherPipeline.from_pretrained(tmp_path)
    default = pipe("a red ball", generator=torch.Generator().manual_seed(0), **kw).perception[0]
    explicit = pipe("a red ball", generator=torch.Generator().manual_seed(0), perception_meta=meta, **kw).perception[0]
    inferred = pipe("a red ball", generator=torch.Generator().manual_seed(0), perception_meta={}, **kw).perception[0]
    assert np.array_equal(default["depth"], explicit["depth"])
    assert not np.allclose(default["depth"], inferred["depth"])  # the fixed range is what decodes the default
    with pytest.raises(MMPhysInputError, match="unknown cue"):
        MMPhysVideoTeacherPipeline(**comps, perception_cue="normals")
