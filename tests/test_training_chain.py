"""Tiny end-to-end chain on synthetic clips (CPU): teacher -> student -> LoRA, plus exact resume.

Sizes: tiny-wan / tiny-cogvideox, 32x32 px, 9 frames, a handful of steps on cached latents.
"""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.training.config import StudentTrainConfig, TeacherTrainConfig
from mmphys_diffusers.training.student import train_student
from mmphys_diffusers.training.teacher import train_teacher
from mmphys_diffusers.training.trainer import InterruptedForTest

FAST = dict(num_frames=9, height=32, width=32, report_to="none", cache_latents=True, validation_num_inference_steps=2)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from mmphys_diffusers.simulation import generate_dataset

    root = tmp_path_factory.mktemp("world")
    generate_dataset(root / "main", num_clips=4, num_frames=9, size=32, seed=0, families=["free_fall", "ramp"], progress=False)
    generate_dataset(root / "new", num_clips=2, num_frames=9, size=32, seed=1, families=["collision"], progress=False)
    return root


@pytest.fixture(scope="module")
def chain(world, tmp_path_factory):
    """Teacher (full, EMA) then student (full) on the main world; module-scoped so later tests reuse them."""
    out = tmp_path_factory.mktemp("chain")
    teacher_cfg = TeacherTrainConfig(
        pretrained_model="tiny-wan", dataset=str(world / "main"), output_dir=str(out / "teacher"), max_train_steps=40,
        train_batch_size=2, learning_rate=2e-3, checkpointing_steps=20, checkpoints_total_limit=1, use_ema=True,
        ema_decay=0.9, perception_codec_kwargs={"unified": {"near": 4.0, "far": 16.0}}, **FAST,
    )
    teacher = train_teacher(teacher_cfg)
    student_cfg = StudentTrainConfig(
        pretrained_model="tiny-wan", teacher_model=str(out / "teacher"), dataset=str(world / "main"),
        output_dir=str(out / "student"), max_train_steps=40, train_batch_size=2, learning_rate=2e-3,
        checkpointing_steps=40, projector_hidden_dim=32, **FAST,
    )
    student = train_student(student_cfg)
    return out, teacher, student


def _mean(values):
    return sum(values) / len(values)


def test_mmphys_generate_defaults_to_the_clip_shape_a_trained_folder_learnt(chain, tmp_path):
    """A trainer's output folder records its frames and size, so `mmphys generate --model <folder>` without
    --frames/--size makes 9 x 32 x 32 clips, not the pipeline's 81 x 480 x 832 default."""
    from mmphys_diffusers.cli.generate import generate
    from mmphys_diffusers.utils.video_io import read_video

    out, _, _ = chain
    assert json.loads((out / "student" / "mmphys_recipe.json").read_text())["generation_defaults"] == \
        {"num_frames": 9, "height": 32, "width": 32}
    video = tmp_path / "student.mp4"
    generate("a ball falls", video, model=str(out / "student"), steps=2)
    frames = read_video(video)
    frames = frames[0] if isinstance(frames, tuple) else frames
    assert np.asarray(frames).shape == (9, 32, 32, 3)


def test_teacher_trains_and_loads(chain):
    out, summary, _ = chain
    from mmphys_diffusers.pipelines import MMPhysVideoTeacherPipeline

    losses = [h["loss"] for h in summary["history"]]
    assert len(losses) == 40
    assert _mean(losses[-10:]) < 0.9 * _mean(losses[:10])  # the loss falls
    assert {"loss_rgb", "loss_perception"} <= set(summary["history"][0])
    pipe = MMPhysVideoTeacherPipeline.from_pretrained(out / "teacher")
    # the saved teacher decodes perception with the codec settings it was trained with
    assert (pipe.config.perception_cue, pipe.config.perception_meta) == ("unified", {"near": 4.0, "far": 16.0})
    links = [p for n, p in pipe.transformer.named_parameters() if "links" in n]
    assert links and any(p.abs().sum() > 0 for p in links)  # zero-initialised links learned something
    result = pipe("a ball falls", mode="joint", num_frames=9, height=32, width=32, num_inference_steps=2,
                  guidance_scale=1.0, generator=torch.Generator().manual_seed(0), output_type="np")
    assert result.frames.shape == (1, 9, 32, 32, 3) and result.perception_frames.shape == (1, 9, 32, 32, 3)
    # checkpoints pruned to the limit, sample video + card present
    assert sorted(p.name for p in (out / "teacher").glob("checkpoint-*")) == ["checkpoint-40"]
    assert (out / "teacher" / "samples" / "final_0.mp4").is_file()
    assert "samples/final_0.mp4" in (out / "teacher" / "README.md").read_text()


def test_student_distils_and_is_stock_loadable(chain):
    out, _, summary = chain
    from diffusers import DiffusionPipeline, WanPipeline, WanTransformer3DModel

    history = summary["history"]
    assert all(h["loss_align"] >= 0 for h in history)
    assert _mean([h["loss_align"] for h in history[-10:]]) < _mean([h["loss_align"] for h in history[:10]])
    assert _mean([h["loss"] for h in history[-10:]]) < _mean([h["loss"] for h in history[:10]])
    pipe = DiffusionPipeline.from_pretrained(out / "student")
    assert type(pipe) is WanPipeline and type(pipe.transformer) is WanTransformer3DModel  # projector dropped
    weights = load_file(str(out / "student" / "transformer" / "diffusion_pytorch_model.safetensors"))
    assert not any("projector" in k for k in weights)
    index = json.loads((out / "student" / "model_index.json").read_text())
    assert index["_class_name"] == "WanPipeline"


def test_lora_on_new_domain_student_and_teacher(chain, world, tmp_path):
    out, _, _ = chain
    from mmphys_diffusers.pipelines import MMPhysVideoPipeline, MMPhysVideoTeacherPipeline
    from mmphys_diffusers.training.lora import CONTROL_PARAMETERS_NAME, load_teacher_lora

    lora = dict(lora_rank=4, lora_alpha=8, max_train_steps=6, learning_rate=1e-2, checkpointing_steps=6, num_validation_videos=0)
    train_student(StudentTrainConfig(
        pretrained_model=str(out / "student"), teacher_model=str(out / "teacher"), dataset=str(world / "new"),
        output_dir=str(tmp_path / "student-lora"), projector_hidden_dim=16, **lora, **FAST,
    ))
    assert (tmp_path / "student-lora" / "pytorch_lora_weights.safetensors").is_file()
    pipe = MMPhysVideoPipeline.from_pretrained(out / "student")
    kwargs = dict(prompt="two balls collide", num_frames=9, height=32, width=32, num_inference_steps=2, guidance_scale=1.0, output_type="np")
    base = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).frames
    pipe.load_lora_weights(tmp_path / "student-lora", adapter_name="physics")
    # rank and alpha survive the round trip (stored as adapter metadata): scale alpha / rank = 2
    layer = pipe.transformer.blocks[0].attn1.to_q
    assert layer.r["physics"] == 4 and layer.lora_alpha["physics"] == 8 and layer.scaling["physics"] == 2.0
    with_lora = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).frames
    pipe.set_adapters(["physics"], adapter_weights=[0.0])
    scale_zero = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).frames
    assert np.abs(with_lora - base).max() > 1e-4  # the adapter changes the output
    assert np.abs(scale_zero - base).max() < 1e-5  # and the adapter scale applies

    train_teacher(TeacherTrainConfig(
        pretrained_model=str(out / "teacher"), dataset=str(world / "new"), output_dir=str(tmp_path / "teacher-lora"), **lora, **FAST,
    ))
    assert (tmp_path / "teacher-lora" / CONTROL_PARAMETERS_NAME).is_file()
    teacher = MMPhysVideoTeacherPipeline.from_pretrained(out / "teacher")
    before = {n: p.detach().clone() for n, p in teacher.transformer.named_parameters() if "links" in n}
    load_teacher_lora(teacher, tmp_path / "teacher-lora")
    after = dict(teacher.transformer.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)  # trained links restored
    assert any("lora" in n for n in after)


def _teacher_resume_config(world, out, **overrides):
    return TeacherTrainConfig(
        pretrained_model="tiny-wan", dataset=str(world / "main"), output_dir=str(out), max_train_steps=5,
        train_batch_size=1, gradient_accumulation_steps=2, learning_rate=1e-3, lr_scheduler="linear", lr_warmup_steps=1,
        checkpointing_steps=3, use_ema=True, ema_decay=0.9, num_validation_videos=0, stream_dropout_prob=0.5,
        **{**FAST, **overrides},
    )


def test_interrupted_and_resumed_run_matches_uninterrupted(world, tmp_path):
    full = train_teacher(_teacher_resume_config(world, tmp_path / "full"))
    with pytest.raises(InterruptedForTest):
        train_teacher(_teacher_resume_config(world, tmp_path / "resumed"), interrupt_after_step=3)
    assert (tmp_path / "resumed" / "checkpoint-3").is_dir() and not (tmp_path / "resumed" / "model_index.json").exists()
    resumed = train_teacher(_teacher_resume_config(world, tmp_path / "resumed", resume_from_checkpoint="latest"))
    assert [h["step"] for h in resumed["history"]] == [1, 2, 3, 4, 5]
    for a, b in zip(full["history"], resumed["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6)
        assert a["lr"] == pytest.approx(b["lr"])
    wa = load_file(str(tmp_path / "full" / "transformer" / "diffusion_pytorch_model.safetensors"))
    wb = load_file(str(tmp_path / "resumed" / "transformer" / "diffusion_pytorch_model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-5, atol=1e-6)
    # and it did train: the final (EMA) weights differ from a fresh teacher
    assert any(wa[k].abs().sum() > 0 for k in wa if "links" in k)


def test_student_rejects_teacher_of_another_backbone(chain, world, tmp_path):
    from mmphys_diffusers.errors import MMPhysInputError

    out, _, _ = chain
    with pytest.raises(MMPhysInputError, match="must share the backbone family"):
        train_student(StudentTrainConfig(
            pretrained_model="tiny-cogvideox", teacher_model=str(out / "teacher"), dataset=str(world / "main"),
            output_dir=str(tmp_path / "s"), max_train_steps=1, **FAST,
        ))


def test_cogvideox_teacher_and_student_steps(world, tmp_path):
    """v-prediction + rotary embeddings path on tiny-cogvideox; the teacher also runs bf16 autocast,
    gradient checkpointing and LoRA (frozen base cast to bf16)."""
    teacher = train_teacher(TeacherTrainConfig(
        pretrained_model="tiny-cogvideox", dataset=str(world / "main"), output_dir=str(tmp_path / "teacher-lora"),
        max_train_steps=2, checkpointing_steps=2, num_validation_videos=0, mixed_precision="bf16",
        gradient_checkpointing=True, lora_rank=4, **FAST,
    ))
    assert np.isfinite([h["loss"] for h in teacher["history"]]).all()
    assert (tmp_path / "teacher-lora" / "pytorch_lora_weights.safetensors").is_file()
    teacher = train_teacher(TeacherTrainConfig(
        pretrained_model="tiny-cogvideox", dataset=str(world / "main"), output_dir=str(tmp_path / "teacher"),
        max_train_steps=3, checkpointing_steps=3, num_validation_videos=1, **FAST,
    ))
    assert np.isfinite([h["loss"] for h in teacher["history"]]).all()
    student = train_student(StudentTrainConfig(
        pretrained_model="tiny-cogvideox", teacher_model=str(tmp_path / "teacher"), dataset=str(world / "main"),
        output_dir=str(tmp_path / "student"), max_train_steps=3, checkpointing_steps=3, alignment_loss="cosine",
        teacher_perception_mode="joint", projector_hidden_dim=16, num_validation_videos=0, **FAST,
    ))
    assert np.isfinite([h["loss_align"] for h in student["history"]]).all()
    from diffusers import CogVideoXPipeline, DiffusionPipeline

    assert type(DiffusionPipeline.from_pretrained(tmp_path / "student")) is CogVideoXPipeline


def test_latent_cache_is_reused_and_matches_online_encoding(world, tmp_path):
    cache_dir = tmp_path / "cache"
    common = dict(pretrained_model="tiny-wan", dataset=str(world / "main"), max_train_steps=2, checkpointing_steps=2,
                  num_validation_videos=0, num_frames=9, height=32, width=32, report_to="none")
    online = train_teacher(TeacherTrainConfig(output_dir=str(tmp_path / "online"), cache_latents=False, **common))
    cached = train_teacher(TeacherTrainConfig(output_dir=str(tmp_path / "cached"), cache_latents=True, latent_cache_dir=str(cache_dir), **common))
    files = sorted(cache_dir.rglob("*.safetensors"))
    assert len(files) == 4
    stamps = {f: f.stat().st_mtime_ns for f in files}
    again = train_teacher(TeacherTrainConfig(output_dir=str(tmp_path / "again"), cache_latents=True, latent_cache_dir=str(cache_dir), **common))
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # read, not re-encoded
    for a, b, c in zip(online["history"], cached["history"], again["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and b["loss"] == pytest.approx(c["loss"], rel=1e-6)
    # a different setting (frame count) gets its own cache key
    train_teacher(TeacherTrainConfig(output_dir=str(tmp_path / "other"), cache_latents=True, latent_cache_dir=str(cache_dir),
                                     **{**common, "num_frames": 5}))
    assert len([p for p in cache_dir.iterdir() if p.is_dir()]) == 2


def test_foreground_loss_weight_reweights_objects_and_keys_its_own_cache(world, tmp_path):
    """Same data, timesteps and noise: the weighted run's first loss differs, and its cache (which holds
    the object masks) lives under another key; cached and online masks give the same losses."""
    cache_dir = tmp_path / "cache"
    common = dict(pretrained_model="tiny-wan", dataset=str(world / "main"), max_train_steps=2, checkpointing_steps=2,
                  num_validation_videos=0, num_frames=9, height=32, width=32, report_to="none", alignment_loss_weight=0.0,
                  perception_codec_kwargs={"unified": {"near": 4.0, "far": 16.0}})
    plain = train_student(StudentTrainConfig(output_dir=str(tmp_path / "plain"), cache_latents=True, latent_cache_dir=str(cache_dir), **common))
    weighted = train_student(StudentTrainConfig(output_dir=str(tmp_path / "weighted"), cache_latents=True, latent_cache_dir=str(cache_dir),
                                                foreground_loss_weight=4.0, **common))
    online = train_student(StudentTrainConfig(output_dir=str(tmp_path / "online"), cache_latents=False, foreground_loss_weight=4.0, **common))
    assert len([p for p in cache_dir.iterdir() if p.is_dir()]) == 2
    masks = [load_file(str(f)) for f in cache_dir.rglob("*.safetensors")]
    with_mask = [m for m in masks if "foreground" in m]
    assert len(with_mask) == 4 and all(0 < m["foreground"].mean() < 1 for m in with_mask)  # objects, not the whole frame
    assert weighted["history"][0]["loss"] != pytest.approx(plain["history"][0]["loss"], rel=1e-3)
    for a, b in zip(weighted["history"], online["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    with pytest.raises(MMPhysInputError, match="foreground_loss_weight"):
        StudentTrainConfig(**{**common, "foreground_loss_weight": 1.0, "perception_cue": "depth"}).validate()


def _weights(folder):
    return load_file(str(folder / "transformer" / "diffusion_pytorch_model.safetensors"))


def test_resume_from_final_checkpoint_takes_no_step(world, tmp_path):
    """4 clips, batch 1: 4 steps per epoch; 5 steps end inside epoch 2. Resuming from checkpoint-5 must not
    run the rest of that epoch (it used to take a 6th optimizer step)."""
    config = dict(pretrained_model="tiny-wan", dataset=str(world / "main"), output_dir=str(tmp_path / "t"), max_train_steps=5,
                  train_batch_size=1, learning_rate=1e-3, checkpointing_steps=5, num_validation_videos=0,
                  resume_from_checkpoint="latest", **FAST)
    first = train_teacher(TeacherTrainConfig(**config))
    assert [h["step"] for h in first["history"]] == [1, 2, 3, 4, 5]
    before = _weights(tmp_path / "t")
    again = train_teacher(TeacherTrainConfig(**config))
    assert [h["step"] for h in again["history"]] == [1, 2, 3, 4, 5]
    assert again["metrics"]["global_step"] == 5
    assert sorted(p.name for p in (tmp_path / "t").glob("checkpoint-*")) == ["checkpoint-5"]
    log = (tmp_path / "t" / "logs" / "training_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [1, 2, 3, 4, 5]
    after = _weights(tmp_path / "t")
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key


def test_baseline_without_teacher_matches_weight_zero_student(chain, world, tmp_path):
    """alignment_loss_weight 0 and no teacher_model: no teacher, no projector, a stock pipeline, and the same
    data / timesteps / noise (hence the same diffusion loss at every step) as a run that loads the teacher."""
    from diffusers import DiffusionPipeline, WanPipeline

    from mmphys_diffusers.training.student import StudentTrainer
    from mmphys_diffusers.training.trainer import is_teacher_transformer, write_summary

    out, _, _ = chain
    common = dict(pretrained_model="tiny-wan", dataset=str(world / "main"), max_train_steps=3, train_batch_size=2,
                  learning_rate=2e-3, checkpointing_steps=3, projector_hidden_dim=16, alignment_loss_weight=0.0,
                  teacher_perception_mode="joint", num_validation_videos=0, **FAST)
    with_teacher = StudentTrainer(StudentTrainConfig(teacher_model=str(out / "teacher"), output_dir=str(tmp_path / "with"), **common))
    reference = with_teacher.train()
    assert with_teacher.teacher is not None and len(with_teacher.model.projectors) == 1

    baseline = StudentTrainer(StudentTrainConfig(teacher_model="", output_dir=str(tmp_path / "baseline"), **common))
    summary = baseline.train()
    write_summary(tmp_path / "baseline", summary)
    assert baseline.teacher is None
    assert not any(is_teacher_transformer(m) for m in baseline.model.modules())  # no teacher in the trained module
    assert len(baseline.model.projectors) == 0 and baseline.student_layers == []
    history = summary["history"]
    assert [h["step"] for h in history] == [1, 2, 3]
    assert all("loss_align" not in h and h["loss"] == pytest.approx(h["loss_diffusion"]) for h in history)
    assert all("loss_align" in h for h in reference["history"])
    # the teacher contributes no gradient at weight 0, so every step's diffusion loss matches (same draws)
    for a, b in zip(reference["history"], history):
        assert a["loss_diffusion"] == pytest.approx(b["loss_diffusion"], rel=1e-6, abs=1e-7)
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "baseline")
    assert type(pipe) is WanPipeline
    weights = _weights(tmp_path / "baseline")
    assert not any("projector" in k for k in weights)
    for key, value in _weights(tmp_path / "with").items():
        torch.testing.assert_close(weights[key], value, rtol=1e-5, atol=1e-6)


def test_perception_codec_kwargs_reach_dataset_cache_key_and_output(world, tmp_path):
    from mmphys_diffusers.training.data import TrainingClips
    from mmphys_diffusers.training.teacher import TeacherTrainer

    narrow = {"unified": {"near": 4.0, "far": 16.0, "max_flow": 5.0, "max_instances": 8}}
    wide = {"unified": {"near": 1.0, "far": 40.0, "max_flow": 5.0, "max_instances": 8}}
    clips = TrainingClips(world / "main", "unified", 9, 32, 32, codec_kwargs=narrow["unified"])
    codec = clips.clips.codecs["unified"]
    assert (codec.near, codec.far, codec.max_flow, codec.max_instances) == (4.0, 16.0, 5.0, 8)
    item = clips[0]
    assert item["rgb"].is_contiguous() and item["perception"].is_contiguous()  # conv3d's fast path
    assert item["rgb"].shape == (3, 9, 32, 32)

    cache_dir = tmp_path / "cache"
    common = dict(pretrained_model="tiny-wan", dataset=str(world / "main"), max_train_steps=1, checkpointing_steps=1,
                  num_validation_videos=0, latent_cache_dir=str(cache_dir), **FAST)
    keys = {}
    for name, kwargs in (("narrow", narrow), ("wide", wide)):
        trainer = TeacherTrainer(TeacherTrainConfig(output_dir=str(tmp_path / name), perception_codec_kwargs=kwargs, **common))
        summary = trainer.train()
        assert trainer.caption_source.clips.codecs["unified"].far == kwargs["unified"]["far"]  # the dataset got them
        keys[name] = trainer.train_dataset.cache.folder
        assert json.loads((keys[name] / "cache_info.json").read_text())["codec_kwargs"] == kwargs["unified"]
        # recorded next to model_index.json for inference (read by `mmphys generate`)
        recorded = json.loads((tmp_path / name / "mmphys_recipe.json").read_text())
        assert recorded == {"perception_cue": "unified", "perception_codec_kwargs": kwargs["unified"],
                            "generation_defaults": {"num_frames": 9, "height": 32, "width": 32}}
        assert summary["perception_codec_kwargs"] == kwargs["unified"]
    assert keys["narrow"] != keys["wide"]  # other codec settings never reuse a cache
    clip = sorted(p.name for p in keys["narrow"].glob("*.safetensors"))[0]
    a, b = load_file(str(keys["narrow"] / clip)), load_file(str(keys["wide"] / clip))
    torch.testing.assert_close(a["rgb_latents"], b["rgb_latents"])  # same RGB ...
    assert (a["perception_latents"] - b["perception_latents"]).abs().max() > 1e-3  # ... other depth encoding


def test_caption_dropout_swaps_in_the_empty_prompt(world, tmp_path):
    """caption_dropout_prob: dropped samples get the empty prompt's embedding (guidance's unconditional
    branch); at 0 nothing changes and no random number is drawn, so earlier runs keep their noise stream."""
    from mmphys_diffusers.training.teacher import TeacherTrainer

    common = dict(pretrained_model="tiny-wan", dataset=str(world / "main"), max_train_steps=1, checkpointing_steps=1,
                  num_validation_videos=0, latent_cache_dir=str(tmp_path / "cache"), **FAST)
    trainers = {}
    for p in (0.0, 1.0):
        trainers[p] = TeacherTrainer(TeacherTrainConfig(output_dir=str(tmp_path / f"p{p}"), caption_dropout_prob=p, **common))
        trainers[p].train()
    items = [trainers[0.0].train_dataset[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("rgb_latents", "perception_latents", "prompt_embeds")}

    keep = trainers[0.0]
    state = keep.rng.generator.get_state()
    _, _, embeds = keep.latents_of(batch)
    torch.testing.assert_close(embeds, batch["prompt_embeds"].to(embeds.dtype))
    assert torch.equal(keep.rng.generator.get_state(), state)

    drop = trainers[1.0]
    _, _, embeds = drop.latents_of(batch)
    empty = drop.empty_prompt_embeds(embeds.shape[1])
    assert embeds.shape == batch["prompt_embeds"].shape
    torch.testing.assert_close(embeds, empty.expand_as(embeds).to(embeds.dtype))
    assert (embeds - batch["prompt_embeds"].to(embeds.dtype)).abs().max() > 1e-3  # the captions were not empty
    with pytest.raises(MMPhysInputError, match="caption_dropout_prob"):
        TeacherTrainConfig(caption_dropout_prob=1.5, **common).validate()


def test_init_transformer_from_fine_tunes_a_trained_model_on_the_base_vae(chain, world, tmp_path):
    """`init_transformer_from` starts from a trained student's or teacher's weights on the base's VAE (and so
    its latent cache); a pipeline with another VAE is refused."""
    from mmphys_diffusers.backbones import load_base_pipeline
    from mmphys_diffusers.training.student import StudentTrainer
    from mmphys_diffusers.training.teacher import TeacherTrainer
    from mmphys_diffusers.training.trainer import is_teacher_transformer

    out, _, _ = chain
    common = dict(pretrained_model="tiny-wan", dataset=str(world / "main"), max_train_steps=1, train_batch_size=2,
                  learning_rate=2e-3, checkpointing_steps=1, alignment_loss_weight=0.0, num_validation_videos=0, **FAST)
    first_loss = {}
    for name, init in (("fresh", None), ("fine-tune", str(out / "student"))):
        trainer = StudentTrainer(StudentTrainConfig(output_dir=str(tmp_path / name), init_transformer_from=init, **common))
        first_loss[name] = trainer.train()["history"][0]["loss"]
    loaded = StudentTrainer(StudentTrainConfig(output_dir=str(tmp_path / "loaded"), init_transformer_from=str(out / "student"), **common))
    loaded.setup()
    trained, live = _weights(out / "student"), loaded.accelerator.unwrap_model(loaded.model).transformer.state_dict()
    assert set(trained) == set(live)
    for key, value in trained.items():
        torch.testing.assert_close(live[key], value)
    # the same batch, timesteps and noise: the trained weights denoise it better than the fresh base
    assert first_loss["fine-tune"] < 0.8 * first_loss["fresh"]

    teacher = TeacherTrainer(TeacherTrainConfig(
        pretrained_model="tiny-wan", dataset=str(world / "main"), output_dir=str(tmp_path / "teacher"), max_train_steps=1,
        init_transformer_from=str(out / "teacher"), perception_codec_kwargs={"unified": {"near": 4.0, "far": 16.0}},
        num_validation_videos=0, **FAST))
    teacher.setup()
    live = teacher.accelerator.unwrap_model(teacher.model)
    assert is_teacher_transformer(live)
    for key, value in _weights(out / "teacher").items():
        torch.testing.assert_close(live.state_dict()[key], value)

    # a single-stream model started from a teacher gets the teacher's RGB stream: a stock transformer with the
    # teacher's backbone weights and its RGB task embedding folded in, no links; it trains and saves as a student
    from mmphys_diffusers.models import ControlLinkTransformer3DModel

    trained_teacher = ControlLinkTransformer3DModel.from_pretrained(str(out / "teacher"), subfolder="transformer")
    expected = trained_teacher.rgb_stream_transformer().state_dict()
    from_teacher = StudentTrainer(StudentTrainConfig(output_dir=str(tmp_path / "from-teacher"), init_transformer_from=str(out / "teacher"), **common))
    from_teacher.train()
    saved = _weights(tmp_path / "from-teacher")
    assert set(saved) == set(expected) and not any(k.startswith(("task_embedding", "perception_to_rgb")) for k in saved)
    first = from_teacher.history[0]["loss"]
    assert first < 0.8 * first_loss["fresh"]  # the teacher's backbone already denoises RGB latents
    fresh_start = StudentTrainer(StudentTrainConfig(output_dir=str(tmp_path / "from-teacher-2"), init_transformer_from=str(out / "teacher"), **common))
    fresh_start.setup()
    for key, value in expected.items():
        torch.testing.assert_close(fresh_start.accelerator.unwrap_model(fresh_start.model).transformer.state_dict()[key], value)
    with pytest.raises(MMPhysInputError, match="holds a teacher"):
        StudentTrainer(StudentTrainConfig(output_dir=str(tmp_path / "bad"), **{**common, "pretrained_model": str(out / "teacher")})).setup()

    other = load_base_pipeline("tiny-wan", seed=1)  # another VAE initialisation
    other.save_pretrained(tmp_path / "other-vae")
    with pytest.raises(MMPhysInputError, match="its VAE differs from pretrained_model's"):
        StudentTrainer(StudentTrainConfig(output_dir=str(tmp_path / "bad"), init_transformer_from=str(tmp_path / "other-vae"), **common)).setup()
    with pytest.raises(MMPhysInputError, match=r"init_transformer_from=.*folder has no model_index.json"):
        StudentTrainConfig(output_dir=str(tmp_path / "bad"), init_transformer_from=str(tmp_path), **common).validate()
