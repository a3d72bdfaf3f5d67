#!/usr/bin/env python
"""MMPhysVideo-Tiny: the whole recipe, from an empty folder to bundled models, in one resumable command.

    python train/recipes/mmphysvideo_tiny.py --preset cpu-1k --out outputs/mmphysvideo-tiny-cpu-1k   # the bundled models (2 CPU cores)
    python train/recipes/mmphysvideo_tiny.py --preset gpu            # the larger recipe (one GPU)
    python train/recipes/mmphysvideo_tiny.py --preset smoke --out /tmp/smoke --export /tmp/smoke/export

Stages (each skipped when its output is complete, resumed from its latest checkpoint otherwise,
so the command can be killed with -9 and simply run again):

1. ``data``     simulate the training world and a held-out set (``<out>/data/{train,heldout}``);
2. ``vae``      train a tiny ``AutoencoderKLWan`` on RGB + "unified" pseudo-RGB clips, store latent stats;
3. ``base``     assemble the base pipeline: trained VAE + frozen tiny UMT5 + byte tokenizer + a fresh
                tiny Wan transformer + the flow-matching scheduler (``<out>/base``);
4. ``pretrain`` only with a ``pretrain`` block in the preset: an RGB-only model trained from the base
                (``<out>/pretrain``), which the next three stages then fine-tune, as the paper fine-tunes
                a pretrained video model;
5. ``teacher``  the Bidirectionally Controlled Teacher (RGB + perception streams);
6. ``baseline`` RGB-only diffusion fine-tune of the base (the student trainer with alignment weight 0, no teacher);
7. ``student``  the student distilled from the teacher: same data, steps, seed and noise as the baseline;
8. ``eval``     `run_physics_benchmark` on held-out scenes for the three models (+ seconds per video);
9. ``export``   copy the three pipelines to ``--export`` with a model card, ``mmphys_recipe.json`` and a sample.

The perception videos use FIXED unified-codec ranges for the whole dataset (depth near/far from the
simulator's camera, a flow scale per resolution), so a generated perception video decodes to metric
depth at inference; the values are written into every exported folder (``mmphys_recipe.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[2]
PRESETS_DIR = Path(__file__).resolve().parent / "presets"
DEFAULT_EXPORT = REPO / "mmphys_diffusers" / "assets" / "mmphysvideo-tiny"
STAGES = ("data", "vae", "base", "pretrain", "teacher", "baseline", "student", "eval", "export")
MODEL_KINDS = ("baseline", "teacher", "student")
RECIPE_FILE = "mmphys_recipe.json"
PERCEPTION_CUE = "unified"
# The simulator's camera sees the back wall at 8-16 m and the floor from about 4 m (measured over
# every scene family: depth 4.13-16.0 m); flow magnitudes reach ~0.15 x frame size per frame.
DEPTH_NEAR, DEPTH_FAR = 4.0, 16.0
MAX_INSTANCES = 8


def codec_kwargs_for(size: int) -> dict[str, Any]:
    """Fixed unified-codec settings of a recipe run at `size` px."""
    return {"near": DEPTH_NEAR, "far": DEPTH_FAR, "max_flow": round(size / 6.0, 4), "max_instances": MAX_INSTANCES}


def reproduce_command(argv: Sequence[str]) -> str:
    """The command line that reproduces the whole run: `argv` without ``--stages`` (a partial re-run is
    the same recipe) and without ``--export`` (where the models are copied does not change them)."""
    kept, skipping = [], False
    for arg in argv:
        if arg.startswith("--"):
            skipping = arg.split("=", 1)[0] in ("--stages", "--export")
            if skipping:
                continue
        elif skipping:
            continue
        kept.append(arg)
    return " ".join(["python train/recipes/mmphysvideo_tiny.py", *kept])


def load_preset(name_or_path: str) -> dict[str, Any]:
    """A preset by name (``smoke``, ``cpu``, ``gpu``: ``presets/<name>.json``) or a JSON file."""
    from mmphys_diffusers.errors import MMPhysInputError

    path = PRESETS_DIR / f"{name_or_path}.json"
    if not path.is_file():
        path = Path(name_or_path)
    if not path.is_file():
        known = sorted(p.stem for p in PRESETS_DIR.glob("*.json"))
        raise MMPhysInputError(f"--preset {name_or_path!r}: expected one of {known} or a preset JSON file")
    preset = json.loads(path.read_text())
    preset["name"] = path.stem
    return preset


def _log(message: str) -> None:
    print(f"[mmphysvideo-tiny] {message}", flush=True)


def hardware_summary(device: str) -> str:
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


# ---------------------------------------------------------------------- trainers with a step clock


def _timed_trainer(base_cls: type) -> type:
    """`base_cls` (TeacherTrainer / StudentTrainer) that records the time of every optimizer step."""

    class TimedTrainer(base_cls):
        step_clock: list[float]

        def compute_loss(self, batch):
            # one call per optimizer step (no accumulation in the presets): the gaps are step times
            self.__dict__.setdefault("step_clock", []).append(time.perf_counter())
            return super().compute_loss(batch)

        def median_step_seconds(self) -> float | None:
            clock = self.__dict__.get("step_clock", [])
            gaps = sorted(b - a for a, b in zip(clock, clock[1:]))
            return round(gaps[len(gaps) // 2], 4) if gaps else None

    TimedTrainer.__name__ = f"Timed{base_cls.__name__}"
    return TimedTrainer


def starting_point(out: Path, preset: dict) -> Path:
    """The pipeline the teacher, baseline and student start from: ``pretrain/`` when the preset has a
    ``pretrain`` block, else the freshly initialised ``base/``."""
    return out / "pretrain" if preset.get("pretrain") else out / "base"


# next to a model trained from a preset's `start_from` model: where it started (read by the model card)
START_FROM_FILE = "start_from.json"


def start_from_path(preset: dict, kind: str) -> Path | None:
    """The trained pipeline a preset's ``start_from`` block names for `kind` (relative to the repository),
    or None: then `kind` starts from `starting_point`."""
    value = (preset.get("start_from") or {}).get(kind)
    return None if value is None else _repo_path(value)


def _repo_path(value: str | Path) -> Path:
    """A preset's folder: absolute, or relative to the repository."""
    path = Path(value)
    return path if path.is_absolute() else REPO / path


def _check_start_from(preset: dict) -> None:
    from mmphys_diffusers.errors import MMPhysInputError

    block = preset.get("start_from") or {}
    if not isinstance(block, dict):
        raise MMPhysInputError(f"preset start_from={block!r}: expected {{model kind: trained pipeline folder}}")
    bad = sorted(set(block) - set(MODEL_KINDS))
    if bad:
        raise MMPhysInputError(f"preset start_from names {bad}: expected some of {list(MODEL_KINDS)}")
    for kind in block:
        if not (start_from_path(preset, kind) / "model_index.json").is_file():
            raise MMPhysInputError(f"preset start_from.{kind}={block[kind]!r}: expected a trained pipeline folder with model_index.json "
                                   "(absolute, or relative to the repository)")


def _repo_relative(path: Path) -> str:
    """`path` relative to the repository when inside it, so records and model cards do not name this machine's folders."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def _record_start_from(folder: Path, source: Path, kind: str) -> None:
    """Write where `folder`'s model starts from, once: the source may be replaced later (e.g. by an export)."""
    from mmphys_diffusers.models import is_teacher_class_name
    from mmphys_diffusers.utils.atomic import atomic_write_json

    if (folder / START_FROM_FILE).is_file():
        return
    recipe = source / RECIPE_FILE
    summary = source / "train_summary.json"
    record = {
        "path": _repo_relative(source),
        "run_id": json.loads(recipe.read_text()).get("run_id") if recipe.is_file() else None,
        "global_step": json.loads(summary.read_text()).get("metrics", {}).get("global_step") if summary.is_file() else None,
        # a single-stream model started from a teacher takes the teacher's RGB stream
        "rgb_stream_of_teacher": kind != "teacher"
        and is_teacher_class_name((json.loads((source / "model_index.json").read_text()).get("transformer") or [None])[-1]),
    }
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / START_FROM_FILE, record)


def _train_stage(kind: str, out: Path, preset: dict, seed: int) -> dict:
    """Train one of pretrain / teacher / baseline / student into ``<out>/<kind>`` (resuming); returns its summary."""
    from mmphys_diffusers.training.config import StudentTrainConfig, TeacherTrainConfig, config_from_dict
    from mmphys_diffusers.training.student import StudentTrainer
    from mmphys_diffusers.training.teacher import TeacherTrainer
    from mmphys_diffusers.training.trainer import write_summary

    diffusion = {**preset["diffusion"], **preset["pretrain"]} if kind == "pretrain" else preset["diffusion"]
    common = {
        "pretrained_model": str(out / "base" if kind == "pretrain" else starting_point(out, preset)),
        "dataset": str(out / "data" / "train"),
        "perception_cue": PERCEPTION_CUE,
        "num_frames": preset["num_frames"],
        "height": preset["size"],
        "width": preset["size"],
        "seed": seed,
        # fixed unified-codec ranges for the whole dataset (part of the latent-cache key, and recorded in
        # each output folder's mmphys_recipe.json so a generated perception video decodes with them)
        "perception_codec_kwargs": {PERCEPTION_CUE: codec_kwargs_for(preset["size"])},
        "cache_latents": True,
        # one cache for the three models: same base VAE, text encoder, data and codec ranges
        "latent_cache_dir": str(out / "latent-cache"),
        "output_dir": str(out / kind),
        "resume_from_checkpoint": "latest",
        "checkpoints_total_limit": 2,
        "report_to": "none",
        "validation_prompt": "a red ball falls and bounces on the floor",
        **diffusion,
    }
    source = start_from_path(preset, kind) if kind != "pretrain" else None
    if source is not None:
        # a trained model's weights on the same base (VAE, text encoder, latent cache)
        common["init_transformer_from"] = str(source)
        _record_start_from(out / kind, source, kind)
    if kind == "teacher":
        config, trainer_cls = config_from_dict(TeacherTrainConfig, {**common, **preset["teacher"]}), TeacherTrainer
    else:
        student = dict(preset["student"], teacher_model=str(out / "teacher"))
        if kind in ("baseline", "pretrain"):
            # RGB-only: the same trainer, data, steps, seed and noise stream; no teacher is loaded or run
            student.update(alignment_loss_weight=0.0, teacher_model="")
        config, trainer_cls = config_from_dict(StudentTrainConfig, {**common, **student}), StudentTrainer
    trainer = _timed_trainer(trainer_cls)(config)
    summary = trainer.train()
    summary["median_step_seconds"] = trainer.median_step_seconds()
    if trainer.accelerator.is_main_process:
        write_summary(config.output_dir, summary)
    return summary


# ---------------------------------------------------------------------- stages


def _stage_data(out: Path, preset: dict, seed: int) -> None:
    from mmphys_diffusers.data.manifest import read_manifest
    from mmphys_diffusers.simulation import generate_dataset

    for split, count, split_seed in (("train", preset["train_clips"], seed), ("heldout", preset["heldout_clips"], seed + 10_000)):
        root = out / "data" / split
        if (root / "manifest.jsonl").is_file() and len(read_manifest(root)) >= count:
            _log(f"data/{split}: {count} clips present, skipped")
            continue
        _log(f"data/{split}: simulating {count} clips")
        generate_dataset(root, num_clips=count, num_frames=preset["num_frames"], size=preset["size"], seed=split_seed,
                         families=preset["families"], workers=min(4, os.cpu_count() or 1), progress=True)


def _stage_vae(out: Path, preset: dict, seed: int, device: str) -> dict:
    """Train the VAE into ``vae/``, in up to three phases set by the preset's ``vae`` block:

    1. with ``whole_clip_finetune``: the block trains into ``vae-windows/`` (typically on short windows,
       ``train_num_frames``), and the fine-tune continues from there on whole clips; a windowed VAE alone
       degrades on the frames past its window (docs/mmphysvideo_tiny.md, run 5);
    2. the encoder and decoder, jointly (``vae-joint/`` when a decoder fine-tune follows, else ``vae/``);
    3. with ``decoder_finetune``: only the decoder is trained further (``train_decoder_only``), typically
       with ``colour_weight``, into ``vae/``. The encoder, so the latent space and its stats, stay those of
       phase 2, so the diffusion stages train exactly as they would on phase 2's VAE.

    Later phases keep the block's data and loss settings (not ``vae_config`` / ``train_num_frames``), with
    their own overrides. Each phase resumes from its own checkpoints and is skipped once finished.
    """
    from mmphys_diffusers.training.config import config_from_dict
    from mmphys_diffusers.training.vae import VAE_SUMMARY_NAME, VAETrainConfig, train_vae

    vae_dir = out / "vae"
    if (vae_dir / VAE_SUMMARY_NAME).is_file():
        _log("vae: finished, skipped")
        return json.loads((vae_dir / VAE_SUMMARY_NAME).read_text())
    if preset["vae"].get("from_pipeline"):
        return _reuse_pipeline_vae(out, preset, seed, vae_dir)
    options = dict(preset["vae"])
    architecture = options.pop("base_vae", "tiny-wan")  # tiny-wan (AutoencoderKLWan) or tiny-video (AutoencoderKLTinyVideo)
    whole_clip = options.pop("whole_clip_finetune", None)
    decoder = options.pop("decoder_finetune", None)
    common = dict(
        dataset=str(out / "data" / "train"),
        eval_dataset=str(out / "data" / "heldout"),
        cues=[PERCEPTION_CUE],
        codec_kwargs={PERCEPTION_CUE: codec_kwargs_for(preset["size"])},
        num_frames=preset["num_frames"],
        height=preset["size"],
        width=preset["size"],
        seed=seed,
        resume_from_checkpoint="latest",
    )
    keep = {k: v for k, v in options.items() if k not in ("vae_config", "train_num_frames")}
    where = f"preset {preset.get('name', 'custom')!r}, 'vae' block"
    phases = []  # (folder, base VAE, options, where the options come from, what the log says)
    joint_dir = out / "vae-joint" if decoder else vae_dir
    if whole_clip:
        phases.append((out / "vae-windows", architecture, options, where, "training"))
        phases.append((joint_dir, str(out / "vae-windows"), {**keep, **whole_clip}, f"{where}'s whole_clip_finetune", "whole-clip fine-tune"))
    else:
        phases.append((joint_dir, architecture, options, where, "training"))
    if decoder:
        phases.append((vae_dir, str(joint_dir), {**keep, **decoder, "train_decoder_only": True}, f"{where}'s decoder_finetune",
                       "decoder fine-tune"))
    summary: dict = {}
    for folder, base, phase_options, phase_where, what in phases:
        if (folder / VAE_SUMMARY_NAME).is_file():
            _log(f"vae: {folder.name} finished, skipped")
            continue
        config = config_from_dict(VAETrainConfig, {"output_dir": str(folder), "base_vae": base, **common, **phase_options}, where=phase_where)
        _log(f"vae: {what}, {config.max_train_steps} steps from {base} -> {folder}")
        summary = train_vae(config)
    return summary


def _reuse_pipeline_vae(out: Path, preset: dict, seed: int, vae_dir: Path) -> dict:
    """The ``vae: {"from_pipeline": folder}`` block: copy a trained pipeline's VAE into ``vae/`` instead of
    training one (models fine-tuned from that pipeline need its latents), and measure its held-out PSNR and
    colour recall on this run's held-out clips. The summary names the source; its steps are unknown here."""
    from mmphys_diffusers.errors import MMPhysInputError
    from mmphys_diffusers.training.vae import VAE_SUMMARY_NAME, VAEClips, evaluate_colour_recall, evaluate_psnr, load_vae
    from mmphys_diffusers.utils.atomic import atomic_write_json

    extra = sorted(set(preset["vae"]) - {"from_pipeline"})
    if extra:
        raise MMPhysInputError(f"preset vae block: from_pipeline takes no training options, got {extra}; expected only from_pipeline")
    value = preset["vae"]["from_pipeline"]
    source = _repo_path(value)
    if not (source / "vae" / "config.json").is_file():
        raise MMPhysInputError(f"preset vae.from_pipeline={str(value)!r}: expected a pipeline folder with vae/ (absolute, or relative to the repository)")
    _log(f"vae: copying the VAE of {source}")
    tmp = out / ".vae.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source / "vae", tmp)
    heldout = VAEClips(out / "data" / "heldout", [PERCEPTION_CUE], preset["num_frames"], preset["size"], preset["size"], "uniform", seed,
                       {PERCEPTION_CUE: codec_kwargs_for(preset["size"])})
    vae = load_vae(tmp)
    summary = {
        "global_step": None,
        "psnr": evaluate_psnr(vae, heldout),
        "colour_recall": evaluate_colour_recall(vae, heldout),
        "reused_from": _repo_relative(source),
        "config": {},
    }
    atomic_write_json(tmp / VAE_SUMMARY_NAME, summary)  # written last inside tmp: the rename publishes a finished stage
    shutil.rmtree(vae_dir, ignore_errors=True)
    os.replace(tmp, vae_dir)
    return summary


def _phase_record(path: Path, keys: tuple[str, ...]) -> dict | None:
    """Selected fields of one VAE phase's summary (config fields looked up in its config), or None."""
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    config = summary.get("config") or {}
    return {k: summary[k] if k in summary else config.get(k) for k in keys}


def _windows_phase(out: Path) -> dict | None:
    """The first VAE phase of a ``whole_clip_finetune`` preset (steps, window, time, PSNR), or None."""
    return _phase_record(out / "vae-windows" / "vae_summary.json", ("global_step", "train_num_frames", "train_seconds", "psnr"))


def _decoder_phase(out: Path) -> dict | None:
    """The decoder fine-tune of a ``decoder_finetune`` preset (steps, colour weight, time, PSNR, colour recall), or None."""
    if not (out / "vae-joint" / "vae_summary.json").is_file():
        return None
    return _phase_record(out / "vae" / "vae_summary.json", (
        "global_step", "colour_weight", "learning_rate", "max_train_clips", "train_seconds", "psnr_before", "psnr",
        "colour_recall_before", "colour_recall"))


def _text_components(out: Path, preset: dict) -> tuple[dict, Any]:
    """(UMT5 config overrides, tokenizer or None for the tiny config's byte tokenizer) from the preset's
    ``text_encoder`` block: ``{"tokenizer": "byte" | "word", "max_sequence_length": N, **UMT5 config}``.

    ``word``: one token per word of the caption grammar plus the training captions, so a colour or a
    count reaches the transformer as one embedding (a byte tokenizer spreads it over several tokens).
    """
    from mmphys_diffusers.backbones import build_word_tokenizer, caption_words
    from mmphys_diffusers.data.manifest import read_manifest
    from mmphys_diffusers.errors import MMPhysInputError
    from mmphys_diffusers.simulation import caption_vocabulary

    options = dict(preset.get("text_encoder", {}))
    kind = options.pop("tokenizer", "byte")
    max_length = options.pop("max_sequence_length", 64)
    if kind == "byte":
        return options, None
    if kind != "word":
        raise MMPhysInputError(f"preset text_encoder.tokenizer {kind!r}: expected 'byte' or 'word'")
    captions = [record.caption for record in read_manifest(out / "data" / "train")]
    tokenizer = build_word_tokenizer([*caption_vocabulary(), *captions], model_max_length=max_length)
    longest = max(len(tokenizer(c).input_ids) for c in captions)
    if longest > max_length:
        raise MMPhysInputError(f"preset text_encoder.max_sequence_length {max_length}: the longest training caption has {longest} tokens")
    unknown = sorted(set(caption_words(captions)) - set(caption_vocabulary()))
    if unknown:
        _log(f"base: training captions use words outside the caption grammar (added to the vocabulary): {unknown}")
    return {**options, "vocab_size": len(tokenizer)}, tokenizer


def describe_text_encoder(preset: dict) -> str:
    """The model card's text-encoder line for `preset`."""
    options = dict(preset.get("text_encoder", {}))
    kind = options.pop("tokenizer", "byte")
    width = options.get("d_model", 16)
    if kind == "word":
        return (f"a frozen random-init 1-layer UMT5 (width {width}, seed 0) over a word-level tokenizer whose vocabulary is "
                f"the caption grammar (unknown words read as `<unk>`, {options.get('max_sequence_length', 64)} tokens at most)")
    return f"a frozen random-init 1-layer UMT5 (width {width}, seed 0) over a byte-level tokenizer (16 bytes at most)"


def _stage_base(out: Path, preset: dict, seed: int) -> None:
    """Trained VAE + tiny text encoder/tokenizer + fresh transformer + scheduler -> ``<out>/base``."""
    from diffusers import WanPipeline

    from mmphys_diffusers.backbones import tiny_components
    from mmphys_diffusers.training.vae import load_vae

    base = out / "base"
    if (base / "model_index.json").is_file():
        _log("base: assembled, skipped")
        return
    vae = load_vae(out / "vae")
    # the transformer works in the trained VAE's latent space
    transformer = {**preset.get("transformer", {}), "in_channels": vae.config.z_dim, "out_channels": vae.config.z_dim}
    text_encoder, tokenizer = _text_components(out, preset)
    components = tiny_components("tiny-wan", seed=seed, transformer=transformer, text_encoder=text_encoder)
    components["vae"] = vae
    if tokenizer is not None:
        components["tokenizer"] = tokenizer
    tmp = out / ".base.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    WanPipeline(**components).save_pretrained(tmp)
    os.replace(tmp, base)
    _log(f"base: assembled -> {base}")


def _load_model(kind: str, path: Path, device: str):
    from mmphys_diffusers.pipelines import MMPhysVideoPipeline, MMPhysVideoTeacherPipeline

    cls = MMPhysVideoTeacherPipeline if kind == "teacher" else MMPhysVideoPipeline
    pipe = cls.from_pretrained(path).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


FEATURE_NET_DIR = "feature-net"
REFERENCE_ROWS = ("simulator", "vae_ceiling")


def _feature_network(out: Path, preset: dict, seed: int):
    """The Fréchet-distance feature net, trained once on the recipe's training clips (``<out>/feature-net``)."""
    from mmphys_diffusers.evaluation.features import CONFIG_NAME, VideoFeatureNet, dataset_training_set, train_feature_network

    net_dir = out / FEATURE_NET_DIR
    if not (net_dir / CONFIG_NAME).is_file():
        videos, labels, names = dataset_training_set(out / "data" / "train")
        _log(f"eval: training the feature network on {len(videos)} training clips")
        net, _ = train_feature_network(videos, labels, names, epochs=preset["eval"].get("feature_net_epochs", 20), seed=seed)
        net.save_pretrained(net_dir)
    return VideoFeatureNet.from_pretrained(net_dir)


def _stage_eval(out: Path, preset: dict, device: str, seed: int = 0) -> dict:
    from mmphys_diffusers.evaluation.runner import SIMULATOR_MODEL, SimulatorModel, VAERoundTrip, run_physics_benchmark, training_seeds

    eval_dir = out / "eval"
    if (eval_dir / "results.json").is_file():
        _log("eval: finished, skipped")
        return json.loads((eval_dir / "results.json").read_text())
    settings = preset["eval"]
    feature_net = _feature_network(out, preset, seed)
    trained = {kind: _load_model(kind, out / kind, device) for kind in MODEL_KINDS}
    # reference rows: the simulator itself, and the simulator through the models' own VAE (what they can at best draw)
    models = {"simulator": SIMULATOR_MODEL, "vae_ceiling": SimulatorModel(VAERoundTrip(trained["student"].vae)), **trained}
    _log(f"eval: physics benchmark, {settings['num_prompts']} held-out prompts x {len(settings['seeds'])} seeds x {len(models)} rows")
    return run_physics_benchmark(
        models, eval_dir, num_prompts=settings["num_prompts"], seeds=settings["seeds"], num_frames=preset["num_frames"],
        height=preset["size"], width=preset["size"], num_inference_steps=settings["num_inference_steps"],
        families=preset["families"], exclude_seeds=training_seeds(out / "data" / "train"), feature_network=feature_net,
        num_bootstrap=settings.get("num_bootstrap", 1000), pipeline_kwargs={"guidance_scale": preset["generate"]["guidance_scale"]},
        save_videos=True, progress=True,
    )


def _schedule_note(diffusion: dict) -> str:
    """The model card's note on a final learning-rate decay (empty for a constant rate)."""
    if diffusion.get("lr_scheduler") == "linear":
        return f" (warm-up over {diffusion.get('lr_warmup_steps', 0)} steps, then decayed linearly to 0)"
    if diffusion.get("lr_scheduler") != "warmup_stable_decay":
        return ""
    start = diffusion["max_train_steps"] - diffusion["lr_decay_steps"]
    return f" (constant, then decayed linearly to 0 over steps {start + 1}-{diffusion['max_train_steps']})"


def _regularisers(kind: str, info: dict) -> str:
    """The model card's note on EMA, caption dropout and loss weighting (empty when the preset uses none)."""
    options = {**info["diffusion"], **(info.get("teacher_options", {}) if kind == "teacher" else {})}
    notes = []
    if options.get("use_ema"):
        notes.append(f"EMA {options.get('ema_decay', 0.999)} (the saved weights)")
    if options.get("caption_dropout_prob"):
        notes.append(f"caption dropout {options['caption_dropout_prob']}")
    if options.get("foreground_loss_weight"):
        notes.append(f"object positions weigh 1 + {options['foreground_loss_weight']} in the diffusion loss")
    return ", " + ", ".join(notes) if notes else ""


def _training_time(stage: dict, info: dict) -> str:
    """The model card's training-time line; a continued run counts the earlier run's steps too."""
    line = (f"- training time: {stage.get('train_seconds', float('nan')):.1f} s for this model (median step "
            f"{stage.get('median_step_seconds')} s); whole recipe {info['total_seconds']:.0f} s")
    if "continued_from_step" not in stage:
        return line
    earlier = stage.get("earlier_wall_seconds")
    return (f"- training time: steps 1-{stage['continued_from_step']} in run `{stage['earlier_run_id']}` "
            f"({earlier if earlier is not None else 'unknown'} s), then steps {stage['continued_from_step'] + 1}-{stage.get('global_step')} "
            f"in this run ({stage.get('train_seconds', float('nan')):.1f} s, median step {stage.get('median_step_seconds')} s), "
            f"(`--continue-from`); whole recipe, both runs, {info['total_seconds']:.0f} s")


def _reused_from(folder: Path) -> str | None:
    """Where a stage's output was copied from, when it was (a ``REUSED`` note in the folder), else None."""
    note = folder / "REUSED"
    return note.read_text().strip() if note.is_file() else None


def _start_from_line(record: dict | None) -> str:
    """The model card's starting-point line for a model fine-tuned from a preset's `start_from` (else empty)."""
    if not record:
        return ""
    steps = f", trained {record['global_step']} steps" if record.get("global_step") is not None else ""
    run = f" of run `{record['run_id']}`" if record.get("run_id") else ""
    what = "the RGB stream (shared backbone, control links dropped) of the trained teacher" if record.get("rgb_stream_of_teacher") else "the trained model"
    return (f"- starting point: {what}{run}{steps} (`{record['path']}` when this run started; the preset's "
            "`start_from`); the steps below come on top")


def _pretrain_line(info: dict) -> str:
    """The model card's line on the RGB-only pretraining every model starts from (empty without one)."""
    pre = info.get("pretrain")
    if not pre:
        return "- starting point: the freshly initialised base transformer"
    line = (f"- starting point: an RGB-only model pretrained {pre.get('global_step')} steps from the fresh base "
            f"(the recipe's `pretrain` stage; loss {pre.get('loss_first', float('nan')):.4f} -> {pre.get('loss_last', float('nan')):.4f}, "
            f"{pre.get('train_seconds', float('nan')):.1f} s)")
    return line + (f"; that stage's output was reused from {pre['reused_from']}" if pre.get("reused_from") else "")


def _vae_line(vae: dict) -> str:
    """The model card's VAE line: how it was trained, or where it was copied from (`vae.from_pipeline`)."""
    if vae.get("global_step") is None and vae.get("reused_from"):
        return (f"- VAE: the trained VAE of `{vae['reused_from']}` (copied, not retrained: preset `vae.from_pipeline`); "
                f"held-out PSNR {json.dumps(vae.get('psnr'))} dB on this run's held-out clips")
    return (
        f"- VAE: trained by `train/train_vae.py` for {vae['global_step']} steps on RGB + pseudo-RGB"
        + (f" of the first {vae['train_clips']} clips" if vae.get("train_clips") else "")
        + (f", in random {vae['train_num_frames']}-frame windows" if vae.get("train_num_frames") else "")
        + (f", after {vae['windows']['global_step']} steps on random {vae['windows']['train_num_frames']}-frame windows"
           if vae.get("windows") else "")
        + (f"; then its decoder alone for {vae['decoder_finetune']['global_step']} steps with colour weight "
           f"{vae['decoder_finetune']['colour_weight']} (encoder and latent space unchanged), held-out object-pixel colour "
           f"recall {vae['decoder_finetune']['colour_recall_before']} -> {vae['decoder_finetune']['colour_recall']}"
           if vae.get("decoder_finetune") else "")
        + f"; held-out PSNR {json.dumps(vae.get('psnr'))} dB"
        + (f" (stage output reused from {vae['reused_from']})" if vae.get("reused_from") else "")
    )


def _model_card(kind: str, info: dict) -> str:
    """README.md of an exported model: how exactly it was trained, and what it scores."""
    titles = {
        "baseline": "RGB-only baseline (plain diffusion fine-tune, no perception)",
        "teacher": "Bidirectionally Controlled Teacher (RGB + unified pseudo-RGB perception streams)",
        "student": "single-stream student distilled from the teacher by relation alignment",
    }
    stage = info["stages"][kind]
    metrics = info["eval"].get(kind, {})
    lines = [
        "---",
        "library_name: diffusers",
        "pipeline_tag: text-to-video",
        "license: apache-2.0",
        f"tags: [mmphysvideo, mmphys-diffusers, physics, tiny, {kind}]",
        "---",
        "",
        f"# MMPhysVideo-Tiny {kind}",
        "",
        f"{titles[kind]}. A *tiny* Wan2.1-architecture model trained "
        + ("further from an earlier trained model (below)" if stage.get("start_from") else "from scratch") + " by the mmphys-diffusers",
        "trainers on the project's synthetic physics world (pymunk scenes). It shows the method end to end;",
        "it is not a general video model.",
        "",
        "## How it was trained",
        "",
        f"- command: `{info['command']}` (preset `{info['preset']}`)",
        f"- data: {info['data']['train_clips']} simulated clips ({', '.join(info['data']['families'])}), "
        f"{info['num_frames']} frames x {info['size']} x {info['size']} px, seed {info['seed']}",
        f"- perception cue: `{PERCEPTION_CUE}` with fixed codec settings {json.dumps(info['codec_kwargs'])}",
        _vae_line(info["vae"]),
        f"- text encoder: {info.get('text_encoder', describe_text_encoder({}))}; prompts are read by",
        "  the transformer's cross-attention, which learns over these fixed features",
        _start_from_line(info["stages"][kind].get("start_from")) or _pretrain_line(info),
        f"- steps: {stage.get('global_step')}, batch {info['diffusion']['train_batch_size']}, lr {info['diffusion']['learning_rate']}"
        + _schedule_note(info["diffusion"])
        + _regularisers(kind, info)
        + (" (alignment weight 0: same data, steps, seed and noise as the student)" if kind == "baseline" else ""),
        f"- training loss: first {stage.get('loss_first', float('nan')):.4f} -> last {stage.get('loss_last', float('nan')):.4f}",
        f"- hardware: {info['hardware']}",
        _training_time(stage, info),
        "",
        "## Held-out physics benchmark (`run_physics_benchmark`)",
        "",
        "| metric | mean |",
        "|---|---|",
    ]
    for name, value in sorted(metrics.items()):
        mean = value.get("mean") if isinstance(value, dict) else value
        if isinstance(mean, (int, float)):
            lines.append(f"| {name} | {mean:.4g} |")
    lines += [
        "",
        "## Use",
        "",
        "```bash",
        f"mmphys generate \"a red ball falls and bounces on the floor\" -o out.mp4{' --teacher' if kind == 'teacher' else ''}",
        "```",
        "",
        "```python",
        f"from mmphys_diffusers.pipelines import {'MMPhysVideoTeacherPipeline' if kind == 'teacher' else 'MMPhysVideoPipeline'} as Pipe",
        "pipe = Pipe.from_pretrained(path)",
        f"video = pipe(\"a red ball falls and bounces on the floor\", num_frames={info['num_frames']}, height={info['size']}, "
        f"width={info['size']}, guidance_scale=1.0).frames[0]",
        "```",
        "",
        "Sample: `sample.mp4`" + (" (RGB | perception side by side)." if kind == "teacher" else "."),
        "",
    ]
    return "\n".join(lines)


def _stage_export(out: Path, export: Path, preset: dict, info: dict) -> None:
    ignore = shutil.ignore_patterns("checkpoint-*", ".checkpoint-*", "logs", "latent-cache", "samples", "README.md")
    for kind in MODEL_KINDS:
        target = export / kind
        if (target / RECIPE_FILE).is_file() and json.loads((target / RECIPE_FILE).read_text()).get("run_id") == info["run_id"]:
            _log(f"export/{kind}: up to date, skipped")
            continue
        tmp = export / f".{kind}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(out / kind, tmp, ignore=ignore)
        sample = out / kind / "samples" / "final_0.mp4"
        if sample.is_file():
            shutil.copy2(sample, tmp / "sample.mp4")
        recipe = {
            "run_id": info["run_id"],
            "kind": kind,
            "preset": info["preset"],
            "command": info["command"],
            "perception_cue": PERCEPTION_CUE,
            "perception_codec_kwargs": info["codec_kwargs"],
            "generation_defaults": {"num_frames": info["num_frames"], "height": info["size"], "width": info["size"],
                                    **preset["generate"]},
            "training": info["stages"][kind],
            "eval": info["eval"].get(kind, {}),
            "hardware": info["hardware"],
        }
        (tmp / RECIPE_FILE).write_text(json.dumps(recipe, indent=2) + "\n")
        (tmp / "README.md").write_text(_model_card(kind, info))
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        _log(f"export/{kind}: {target}")
    # what `mmphys eval physics` needs to reproduce the table: the feature network and the table itself
    for name, source in ((FEATURE_NET_DIR, out / FEATURE_NET_DIR), ("benchmark", out / "eval")):
        if not source.is_dir():
            continue
        tmp = export / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("videos"))
        shutil.rmtree(export / name, ignore_errors=True)
        os.replace(tmp, export / name)


def _earlier_part(run: dict, kind: str) -> dict:
    """For a continued run (`continue_run`): the step it continued from and the earlier run's time and first loss."""
    earlier = run.get("continued_from")
    if not earlier:
        return {}
    part = {"continued_from_step": earlier["steps"][kind], "earlier_wall_seconds": earlier["timings_s"].get(kind),
            "earlier_run_id": earlier["run_id"]}
    summary = Path(earlier["out"]) / kind / "train_summary.json"
    if summary.is_file():
        part["loss_first"] = json.loads(summary.read_text()).get("metrics", {}).get("loss_first")
    return part


def _json_or_none(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _stage_metrics(out: Path, kind: str) -> dict:
    summary = json.loads((out / kind / "train_summary.json").read_text())
    return {**summary.get("metrics", {}), "median_step_seconds": summary.get("median_step_seconds")}


# ---------------------------------------------------------------------- continuing a finished run

# outputs a continuation shares with the run it extends (hard links where the filesystem allows)
_SHARED_STAGE_DIRS = ("data", "vae", "vae-joint", "vae-windows", "base", "pretrain", FEATURE_NET_DIR)


# what a continuation may change in `diffusion`: the length, and a constant rate turning into a final decay
_CONTINUABLE_KEYS = ("max_train_steps", "lr_scheduler", "lr_decay_steps")
_CONSTANT_SCHEDULES = ("constant", "constant_with_warmup")


def _preset_without_steps(preset: dict) -> dict:
    diffusion = {k: v for k, v in preset.get("diffusion", {}).items() if k not in _CONTINUABLE_KEYS}
    out = {**{k: v for k, v in preset.items() if k not in ("name", "description", "diffusion")}, "diffusion": diffusion}
    if preset.get("pretrain"):
        # the pretrain block inherits from `diffusion`, so when the fine-tunes turn to a decay it must spell
        # out the schedule it had; `_check_pretrain_schedule` compares the schedule it resolves to
        out["pretrain"] = {k: v for k, v in preset["pretrain"].items() if k not in ("lr_scheduler", "lr_decay_steps")}
    return out


def _pretrain_schedule(preset: dict) -> tuple[str, int] | None:
    """The (lr_scheduler, lr_decay_steps) the pretrain stage trains with: its block over `diffusion`, then
    the trainer defaults; None without a pretrain block."""
    if not preset.get("pretrain"):
        return None
    resolved = {**preset.get("diffusion", {}), **preset["pretrain"]}
    return resolved.get("lr_scheduler", "constant"), int(resolved.get("lr_decay_steps") or 0)


def _check_pretrain_schedule(source: Path, old_preset: dict, new_preset: dict) -> None:
    """The pretrain stage is copied from the earlier run, so the preset must name the schedule it really had."""
    from mmphys_diffusers.errors import MMPhysInputError

    old, new = _pretrain_schedule(old_preset), _pretrain_schedule(new_preset)
    if old != new:
        raise MMPhysInputError(
            f"--continue-from {source}: that run pretrained with (lr_scheduler, lr_decay_steps) = {old}, but this preset's "
            f"pretrain stage resolves to {new}; the pretrain model is copied, not retrained, so set the pretrain block's "
            f"lr_scheduler and lr_decay_steps to {old}")


def _check_continuable_schedule(source: Path, old: dict, new: dict) -> None:
    """A resumed scheduler keeps the old run's position, so the continued run matches a straight run of the
    new preset only when the old run's rate was constant and stays what the new schedule prescribes up to
    the old run's last step."""
    from mmphys_diffusers.errors import MMPhysInputError

    old_schedule = old.get("lr_scheduler", "constant")
    new_schedule = new.get("lr_scheduler", "constant")
    if old_schedule not in _CONSTANT_SCHEDULES:
        raise MMPhysInputError(f"--continue-from {source}: that run's diffusion.lr_scheduler is {old_schedule!r}; only a run "
                               f"with a constant rate ({list(_CONSTANT_SCHEDULES)}) can be continued")
    if new_schedule in _CONSTANT_SCHEDULES:
        if new_schedule != old_schedule:
            raise MMPhysInputError(f"--continue-from {source}: diffusion.lr_scheduler {new_schedule!r} differs from that run's "
                                   f"{old_schedule!r}")
        return
    if new_schedule != "warmup_stable_decay":
        raise MMPhysInputError(f"--continue-from {source}: diffusion.lr_scheduler is {new_schedule!r}; continuing a run needs "
                               "'constant', 'constant_with_warmup' or 'warmup_stable_decay'")
    if old_schedule == "constant" and old.get("lr_warmup_steps", 0):
        raise MMPhysInputError(f"--continue-from {source}: that run used 'constant' (no warm-up) but lr_warmup_steps is "
                               f"{old.get('lr_warmup_steps')}; 'warmup_stable_decay' would warm up where it did not")
    decay_start = new["max_train_steps"] - new.get("lr_decay_steps", 0)
    if decay_start < old["max_train_steps"]:
        raise MMPhysInputError(f"--continue-from {source}: the decay would start at step {decay_start}, before that run's last "
                               f"step {old['max_train_steps']}; expected lr_decay_steps <= {new['max_train_steps'] - old['max_train_steps']}")


def continue_run(source: Path, out: Path, preset: dict) -> dict:
    """Start `out` as a continuation of the finished or stopped run in `source`: same data, VAE, base and
    feature net, and each diffusion model resumes from its latest checkpoint in `source` up to the
    preset's larger ``diffusion.max_train_steps``. Returns the new ``recipe_run.json`` content.

    The preset may differ from the source run's only in ``diffusion.max_train_steps`` (and its name and
    description), and in a constant learning rate becoming ``warmup_stable_decay`` whose decay starts at or
    after the source run's last step. Either way the baseline then trains exactly as a straight run of the
    preset would (exact resume); the student's earlier steps saw the earlier teacher.
    """
    from mmphys_diffusers.errors import MMPhysInputError
    from mmphys_diffusers.training.checkpointing import list_checkpoints, read_training_state
    from mmphys_diffusers.training.data import latent_cache_key
    from mmphys_diffusers.utils.atomic import atomic_write_json

    source, out = Path(source), Path(out)
    source_file = source / "recipe_run.json"
    if not source_file.is_file():
        raise MMPhysInputError(f"--continue-from {source}: no recipe_run.json there; expected the --out folder of a recipe run")
    earlier = json.loads(source_file.read_text())
    old, new = _preset_without_steps(earlier["preset"]), _preset_without_steps(preset)
    if old != new:
        differing = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise MMPhysInputError(f"--continue-from {source}: preset {preset['name']!r} differs from that run's preset "
                               f"{earlier['preset'].get('name')!r} in {differing}; expected only diffusion.max_train_steps "
                               "(and a final learning-rate decay) to differ")
    old_steps, new_steps = earlier["preset"]["diffusion"]["max_train_steps"], preset["diffusion"]["max_train_steps"]
    if new_steps <= old_steps:
        raise MMPhysInputError(f"--continue-from {source}: preset trains {new_steps} diffusion steps, that run {old_steps}; "
                               "expected more steps than the run it continues")
    _check_continuable_schedule(source, earlier["preset"]["diffusion"], preset["diffusion"])
    _check_pretrain_schedule(source, earlier["preset"], preset)
    if out.exists() and any(out.iterdir()):
        raise MMPhysInputError(f"--out {out}: not empty; a continuation starts in a new folder (rerun without --continue-from to resume it)")
    steps: dict[str, int] = {}
    for kind in ("teacher", "baseline", "student"):
        found = list_checkpoints(source / kind)
        if not found:
            raise MMPhysInputError(f"--continue-from {source}: {kind}/ has no checkpoint-* to continue from")
        steps[kind] = int(read_training_state(found[-1][1])["global_step"])
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".continue.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:  # another filesystem
            shutil.copy2(src, dst)

    for name in _SHARED_STAGE_DIRS:
        if (source / name).is_dir():
            shutil.copytree(source / name, tmp / name, copy_function=link, ignore=shutil.ignore_patterns("checkpoint-*", ".checkpoint-*"))
    for kind in ("teacher", "baseline", "student"):
        latest = list_checkpoints(source / kind)[-1][1]
        shutil.copytree(latest, tmp / kind / latest.name)
    # the latent cache is keyed by its settings, which include the run folder: re-key it for `out`
    for cache in sorted((source / "latent-cache").glob("*/cache_info.json")):
        info = json.loads(cache.read_text())
        src_root, out_root = source.resolve(), out.resolve()
        info = {k: (str(out_root / Path(v).relative_to(src_root)) if isinstance(v, str) and Path(v).is_relative_to(src_root) else v)
                for k, v in info.items()}
        target = tmp / "latent-cache" / latent_cache_key(info)
        shutil.copytree(cache.parent, target, copy_function=link, ignore=shutil.ignore_patterns("cache_info.json"))
        atomic_write_json(target / "cache_info.json", info)
    for child in tmp.iterdir():
        os.replace(child, out / child.name)
    tmp.rmdir()
    run = {
        "run_id": f"{preset['name']}-{int(time.time())}",
        "preset": preset,
        "timings_s": {k: v for k, v in earlier["timings_s"].items() if k in ("data", "vae", "base")},
        "continued_from": {"run_id": earlier["run_id"], "out": str(source), "steps": steps,
                           "timings_s": {k: earlier["timings_s"].get(k) for k in ("teacher", "baseline", "student")}},
    }
    atomic_write_json(out / "recipe_run.json", run)
    _log(f"continuing {source} (steps {steps}) in {out} up to {new_steps} steps")
    return run


# ---------------------------------------------------------------------- driver


@contextlib.contextmanager
def _accelerate_on_cpu(enabled: bool):
    """Make accelerate ignore a visible GPU for the duration of the run (restored afterwards)."""
    previous = os.environ.get("ACCELERATE_USE_CPU")
    if enabled:
        os.environ["ACCELERATE_USE_CPU"] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("ACCELERATE_USE_CPU", None)
        else:
            os.environ["ACCELERATE_USE_CPU"] = previous


def run_recipe(
    preset: str | dict,
    out: str | os.PathLike,
    export: str | os.PathLike | None = None,
    device: str = "auto",
    seed: int = 0,
    stages: Sequence[str] = STAGES,
    command: str | None = None,
    continue_from: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Run (or resume) the recipe; returns ``{"timings_s", "skipped", "vae", "stages", "eval", "export"}``.

    Args:
        preset: "smoke" / "cpu" / "gpu", a preset JSON path, or a preset dict.
        out: working folder (data, VAE, base, trainer outputs with checkpoints, eval).
        export: where the three models are exported (default: the package's bundled-model folder).
        device: "auto" (CUDA when present), "cuda" or "cpu".
        stages: the stages to run, in recipe order (later stages need the earlier outputs).
        continue_from: the ``out`` folder of an earlier run of the same preset with fewer diffusion steps;
            a new `out` starts from its stages and checkpoints (`continue_run`).
    """
    import torch

    from mmphys_diffusers.errors import MMPhysInputError

    preset = load_preset(preset) if isinstance(preset, str) else dict(preset, name=preset.get("name", "custom"))
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise MMPhysInputError(f"stages {unknown}: expected some of {list(STAGES)}")
    _check_start_from(preset)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise MMPhysInputError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if device == "cpu":
        preset["diffusion"] = {k: v for k, v in preset["diffusion"].items() if k != "mixed_precision"}
    with _accelerate_on_cpu(device == "cpu" and torch.cuda.is_available()):
        return _run_stages(preset, Path(out), export, device, seed, stages, command, continue_from)


def _run_stages(preset: dict, out: Path, export, device: str, seed: int, stages: Sequence[str], command: str | None,
                continue_from=None) -> dict[str, Any]:
    from mmphys_diffusers.errors import MMPhysInputError
    from mmphys_diffusers.utils.atomic import atomic_write_json

    out = Path(out)
    export = Path(export) if export is not None else DEFAULT_EXPORT
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / "recipe_run.json"
    if continue_from is not None and not run_file.is_file():
        continue_run(Path(continue_from), out, preset)
    run = json.loads(run_file.read_text()) if run_file.is_file() else {}
    if run and run.get("preset") != preset:
        raise MMPhysInputError(f"{out} holds a run of another preset ({run.get('preset', {}).get('name')}); use another --out")
    if not run:
        run = {"run_id": f"{preset['name']}-{int(time.time())}", "preset": preset, "timings_s": {}}
    command = command or reproduce_command(sys.argv[1:])
    timings: dict[str, float] = dict(run["timings_s"])
    skipped: list[str] = []
    vae_summary: dict = {}
    results: dict = {}

    def finished(name: str) -> bool:
        """Whether stage `name` left a complete output (then it is skipped)."""
        if name == "data":
            from mmphys_diffusers.data.manifest import read_manifest

            return all((out / "data" / split / "manifest.jsonl").is_file() and len(read_manifest(out / "data" / split)) >= n
                       for split, n in (("train", preset["train_clips"]), ("heldout", preset["heldout_clips"])))
        if name == "export":
            recipes = [export / kind / RECIPE_FILE for kind in MODEL_KINDS]
            return all(r.is_file() and json.loads(r.read_text()).get("run_id") == run["run_id"] for r in recipes)
        marker = {"vae": "vae/vae_summary.json", "base": "base/model_index.json", "eval": "eval/results.json"}.get(name, f"{name}/train_summary.json")
        return (out / marker).is_file()

    def timed(name: str, fn, *args):
        was_finished = finished(name)
        start = time.perf_counter()
        value = fn(*args)
        if was_finished:
            skipped.append(name)
        else:  # the time of the run that did the work is kept
            timings[name] = round(time.perf_counter() - start, 2)
            run["timings_s"] = timings
            atomic_write_json(run_file, run)
        return value

    _log(f"preset {preset['name']}, device {device}, out {out}")
    if "data" in stages:
        timed("data", _stage_data, out, preset, seed)
    if "vae" in stages:
        vae_summary = timed("vae", _stage_vae, out, preset, seed, device)
    if "base" in stages:
        timed("base", _stage_base, out, preset, seed)
    for kind in ("pretrain", "teacher", "baseline", "student"):
        if kind not in stages or (kind == "pretrain" and not preset.get("pretrain")):
            continue
        if finished(kind):
            _log(f"{kind}: finished, skipped")
            skipped.append(kind)
            continue
        steps = {**preset["diffusion"], **(preset.get("pretrain") or {})}["max_train_steps"] if kind == "pretrain" else preset["diffusion"]["max_train_steps"]
        _log(f"{kind}: training {steps} steps -> {out / kind} (resumes from its latest checkpoint)")
        timed(kind, _train_stage, kind, out, preset, seed)
    if "eval" in stages:
        results = timed("eval", _stage_eval, out, preset, device, seed)
    if "export" in stages:
        if not vae_summary:
            vae_summary = json.loads((out / "vae" / "vae_summary.json").read_text())
        # the encoder-and-decoder phase; with a decoder fine-tune, vae/ holds the fine-tune's summary
        joint_path = out / "vae-joint" / "vae_summary.json"
        joint_summary = json.loads(joint_path.read_text()) if joint_path.is_file() else vae_summary
        if not results:
            results = json.loads((out / "eval" / "results.json").read_text())
        eval_by_model = {}
        for kind in MODEL_KINDS:
            summary = dict(results.get("summary", {}).get(kind, {}))
            seconds = [r["seconds"] for r in results.get("per_video", []) if r["model"] == kind]
            if seconds:
                summary["seconds_per_video"] = {"mean": sum(seconds) / len(seconds), "n": len(seconds)}
            eval_by_model[kind] = summary
        info = {
            "run_id": run["run_id"],
            "preset": preset["name"],
            "command": command,
            "seed": seed,
            "num_frames": preset["num_frames"],
            "size": preset["size"],
            "codec_kwargs": codec_kwargs_for(preset["size"]),
            "data": {"train_clips": preset["train_clips"], "heldout_clips": preset["heldout_clips"], "families": preset["families"]},
            "vae": {**{k: joint_summary.get(k) for k in ("global_step", "psnr_before", "train_seconds", "reused_from")},
                    "psnr": vae_summary.get("psnr"),
                    "colour_recall": vae_summary.get("colour_recall"),
                    "train_clips": (joint_summary.get("config") or {}).get("max_train_clips"),
                    "train_num_frames": (joint_summary.get("config") or {}).get("train_num_frames"),
                    "windows": _windows_phase(out),
                    "decoder_finetune": _decoder_phase(out)},
            "diffusion": preset["diffusion"],
            "teacher_options": preset.get("teacher", {}),
            "text_encoder": describe_text_encoder(preset),
            "stages": {kind: {**_stage_metrics(out, kind), "wall_seconds": timings.get(kind), **_earlier_part(run, kind),
                              "start_from": _json_or_none(out / kind / START_FROM_FILE)}
                       for kind in MODEL_KINDS},
            "pretrain": ({**_stage_metrics(out, "pretrain"), "wall_seconds": timings.get("pretrain"),
                          "reused_from": _reused_from(out / "pretrain")} if preset.get("pretrain") else None),
            "eval": eval_by_model,
            "hardware": hardware_summary(device),
            # a continued run also counts the diffusion time of the run it continued
            "total_seconds": sum(v for k, v in timings.items() if k != "export")
            # a reused pretrain stage still cost its training time once
            + (_stage_metrics(out, "pretrain").get("train_seconds") or 0 if preset.get("pretrain") and "pretrain" not in timings else 0)
            + sum(v or 0 for v in run.get("continued_from", {}).get("timings_s", {}).values()),
        }
        timed("export", _stage_export, out, export, preset, info)
    if skipped:
        _log(f"skipped (already finished): {', '.join(skipped)}")
    _log("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return {"timings_s": timings, "skipped": skipped, "vae": vae_summary, "eval": results.get("summary", {}), "export": str(export)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu", help="smoke | cpu | gpu, or a preset JSON file (default cpu)")
    parser.add_argument("--out", default=None, help="working folder (default outputs/mmphysvideo-tiny-<preset>)")
    parser.add_argument("--export", default=None, help=f"export folder of the three models (default {DEFAULT_EXPORT.relative_to(REPO)})")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"], help="auto: CUDA when present")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES, help="run only these stages")
    parser.add_argument("--continue-from", default=None, metavar="OUT",
                        help="start --out from an earlier run of this preset with fewer diffusion steps (its data, VAE, base "
                             "and latest checkpoints), and train on to the preset's max_train_steps")
    args = parser.parse_args(argv)

    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from mmphys_diffusers.errors import MMPhysInputError

    out = args.out or f"outputs/mmphysvideo-tiny-{Path(args.preset).stem}"
    try:
        run_recipe(args.preset, out, export=args.export, device=args.device, seed=args.seed, stages=args.stages,
                   continue_from=args.continue_from)
    except MMPhysInputError as exc:
        print(f"mmphysvideo_tiny.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
