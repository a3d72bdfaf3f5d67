"""Config system, early validation errors, checkpoint manager and model card / upload filter."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.training.config import (
    StudentTrainConfig,
    TeacherTrainConfig,
    config_from_dict,
    parse_config,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def dataset_dir(tmp_path):
    """A folder that passes the dataset checks (the manifest content is not read by validate())."""
    root = tmp_path / "ds"
    root.mkdir()
    (root / "manifest.jsonl").write_text("")
    return root


def test_cli_overrides_config_file(tmp_path, dataset_dir):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"dataset": str(dataset_dir), "learning_rate": 3e-4, "max_train_steps": 7, "lora_target_modules": ["to_q"]}))
    cfg = parse_config(
        TeacherTrainConfig,
        ["--config", str(cfg_file), "--learning_rate", "1e-4", "--use_ema", "--lora_target_modules", "to_q,to_k", "--control_link_layers", "0", "1"],
    )
    assert cfg.learning_rate == 1e-4  # flag beats file
    assert cfg.max_train_steps == 7  # file beats default
    assert cfg.use_ema is True
    assert cfg.lora_target_modules == ["to_q", "to_k"]
    assert cfg.control_link_layers == [0, 1]
    assert parse_config(TeacherTrainConfig, ["--config", str(cfg_file), "--no_cache_latents"]).cache_latents is False


def test_yaml_config(tmp_path, dataset_dir):
    pytest.importorskip("yaml")
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(f"dataset: {dataset_dir}\nnum_frames: 13\nmixed_precision: bf16\n")
    cfg = parse_config(TeacherTrainConfig, ["--config", str(cfg_file)])
    assert cfg.num_frames == 13 and cfg.mixed_precision == "bf16"


def test_unknown_key_in_config_file(tmp_path, dataset_dir):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"dataset": str(dataset_dir), "learning_rat": 1e-4}))
    with pytest.raises(MMPhysInputError, match=r"unknown option\(s\) \['learning_rat'\]"):
        parse_config(TeacherTrainConfig, ["--config", str(cfg_file)])


def test_missing_dataset(tmp_path):
    with pytest.raises(MMPhysInputError, match="does not exist"):
        TeacherTrainConfig(dataset=str(tmp_path / "nope")).validate()
    (tmp_path / "empty").mkdir()
    with pytest.raises(MMPhysInputError, match="no manifest.jsonl"):
        TeacherTrainConfig(dataset=str(tmp_path / "empty")).validate()


def test_unknown_backbone(tmp_path, dataset_dir):
    with pytest.raises(MMPhysInputError, match="unknown backbone"):
        TeacherTrainConfig(dataset=str(dataset_dir), pretrained_model="tiny-flux").validate()
    folder = tmp_path / "sdxl"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}))
    with pytest.raises(MMPhysInputError, match="unknown backbone"):
        TeacherTrainConfig(dataset=str(dataset_dir), pretrained_model=str(folder)).validate()
    # Hub ids are accepted here and resolved at load time
    TeacherTrainConfig(dataset=str(dataset_dir), pretrained_model="Wan-AI/Wan2.1-T2V-1.3B-Diffusers").validate()


@pytest.mark.parametrize("frames", [8, 10, 0])
def test_incompatible_frame_count(dataset_dir, frames):
    with pytest.raises(MMPhysInputError, match="4k\\+1"):
        TeacherTrainConfig(dataset=str(dataset_dir), num_frames=frames).validate()


def test_other_bad_values(dataset_dir, tmp_path):
    base = {"dataset": str(dataset_dir)}
    bad = [
        ({"height": 40}, "height"),
        ({"lr_scheduler": "warmup"}, "lr_scheduler"),
        ({"lr_decay_steps": 5}, "lr_decay_steps"),  # only with warmup_stable_decay
        ({"lr_scheduler": "warmup_stable_decay"}, "lr_decay_steps"),  # a decay needs steps
        ({"lr_scheduler": "warmup_stable_decay", "lr_decay_steps": 100, "max_train_steps": 50}, "lr_decay_steps"),
        ({"stream_dropout_prob": 1.5}, "stream_dropout_prob"),
        ({"cache_latents": True, "frame_sampling": "random"}, "cache_latents"),
        ({"push_to_hub": True}, "hub_model_id"),
        ({"resume_from_checkpoint": str(tmp_path / "missing")}, "resume_from_checkpoint"),
    ]
    for extra, field in bad:
        with pytest.raises(MMPhysInputError, match=field):
            config_from_dict(TeacherTrainConfig, {**base, **extra}).validate()
    with pytest.raises(MMPhysInputError, match="learning_rate"):
        config_from_dict(TeacherTrainConfig, {**base, "learning_rate": "fast"})
    with pytest.raises(MMPhysInputError, match="teacher_model"):
        StudentTrainConfig(dataset=str(dataset_dir)).validate()
    with pytest.raises(MMPhysInputError, match="alignment_loss"):
        teacher = tmp_path / "teacher"
        teacher.mkdir()
        (teacher / "model_index.json").write_text("{}")
        StudentTrainConfig(dataset=str(dataset_dir), teacher_model=str(teacher), alignment_loss="l2").validate()


def test_script_fails_fast_with_clear_message(tmp_path):
    """The entry script rejects a bad config before loading any model (exit 2, one-line message)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "train" / "train_teacher.py"), "--dataset", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "train_teacher.py: error: dataset=" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "out").exists()


def test_example_configs_parse(dataset_dir):
    """Every shipped trainer config is a valid config (only the dataset / teacher paths are overridden)."""
    configs = sorted((REPO / "train" / "configs").glob("*.json"))
    trainer_configs = [c for c in configs if not c.name.startswith("accelerate_")]
    assert trainer_configs
    for path in trainer_configs:
        cls = StudentTrainConfig if "student" in path.name else TeacherTrainConfig
        cfg = parse_config(cls, ["--config", str(path), "--dataset", str(dataset_dir)], validate=False)
        cfg.dataset = str(dataset_dir)
        if cfg.pretrained_model.startswith("outputs/"):  # a folder written by an earlier stage of the chain
            cfg.pretrained_model = "tiny-wan"
        if isinstance(cfg, StudentTrainConfig):
            cfg.teacher_model = str(dataset_dir)  # existence is checked at training time
            (dataset_dir / "model_index.json").write_text("{}")
        cfg.validate()


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_manager_atomic_and_limit(tmp_path):
    import torch
    from accelerate import Accelerator

    from mmphys_diffusers.training.checkpointing import CheckpointManager, list_checkpoints, resolve_checkpoint

    acc = Accelerator(cpu=True)
    model = torch.nn.Linear(3, 3)
    model.bias.requires_grad_(False)
    optimizer = torch.optim.SGD([model.weight], lr=0.1)
    model, optimizer = acc.prepare(model, optimizer)
    manager = CheckpointManager(acc, tmp_path, total_limit=2)
    # a crashed save leaves only a hidden temp folder, which resume ignores
    (tmp_path / ".checkpoint-9.tmp").mkdir()
    assert resolve_checkpoint(tmp_path, "latest") is None
    for step in (1, 2, 3):
        with torch.no_grad():
            model.weight.fill_(float(step))
        manager.save(step, {"epoch": 0})
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2, 3]
    latest = resolve_checkpoint(tmp_path, "latest")
    assert latest.name == "checkpoint-3"
    assert not any(p.name.startswith(".checkpoint-3") for p in tmp_path.iterdir())
    # only trainable weights are stored
    from safetensors.torch import load_file

    assert set(load_file(str(latest / "model.safetensors"))) == {"weight"}
    with torch.no_grad():
        model.weight.zero_()
        model.bias.fill_(5.0)
    state = manager.load(tmp_path / "checkpoint-2")
    assert state["global_step"] == 2
    assert torch.all(model.weight == 2.0) and torch.all(model.bias == 5.0)


# ---------------------------------------------------------------- model card / upload filter


def test_model_card_and_upload_filter(tmp_path):
    from huggingface_hub import ModelCard

    from mmphys_diffusers.training.hub import build_model_card, files_to_upload

    out = tmp_path / "student"
    (out / "samples").mkdir(parents=True)
    (out / "samples" / "final_0.mp4").write_bytes(b"\x00")
    for junk in ("checkpoint-5/model.safetensors", "logs/events.out", "latent-cache/ab/x.safetensors", ".checkpoint-6.tmp/a"):
        (out / junk).parent.mkdir(parents=True, exist_ok=True)
        (out / junk).write_bytes(b"\x00")
    (out / "transformer").mkdir()
    (out / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00")
    config = StudentTrainConfig(hub_token="secret-token")
    build_model_card(out, "student", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", config.to_dict(), {"loss_last": 0.5},
                     ["samples/final_0.mp4"], "a ball falls")
    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "diffusers" and data["pipeline_tag"] == "text-to-video"
    assert data["base_model"] == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    assert "mmphysvideo" in data["tags"]
    widget_files = [w["output"]["url"] for w in data["widget"]]
    assert widget_files == ["samples/final_0.mp4"] and all((out / f).is_file() for f in widget_files)
    text = (out / "README.md").read_text()
    assert "alignment_loss_weight" in text and "loss_last" in text and "secret-token" not in text
    assert files_to_upload(out) == ["README.md", "samples/final_0.mp4", "transformer/diffusion_pytorch_model.safetensors"]
    with pytest.raises(MMPhysInputError, match="do not exist"):
        build_model_card(out, "student", "x/y", {}, {}, ["samples/missing.mp4"])


def test_perception_codec_kwargs_from_file_and_flag_and_bad_values(tmp_path, dataset_dir):
    codec = {"unified": {"near": 4.0, "far": 16.0, "max_flow": 5.0}}
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"dataset": str(dataset_dir), "perception_codec_kwargs": codec}))
    assert parse_config(TeacherTrainConfig, ["--config", str(cfg_file)]).perception_codec_kwargs == codec
    other = {"unified": {"near": 1.0, "far": 2.0}}
    cfg = parse_config(TeacherTrainConfig, ["--config", str(cfg_file), "--perception_codec_kwargs", json.dumps(other)])
    assert cfg.perception_codec_kwargs == other and cfg.cue_codec_kwargs == other["unified"]  # flag beats file
    assert parse_config(TeacherTrainConfig, ["--dataset", str(dataset_dir)]).perception_codec_kwargs == {}
    bad = [
        ("{not json", "expected a JSON object"),
        ("[1, 2]", "expected a JSON object"),
        ('{"nope": {}}', "unknown codec 'nope'"),
        ('{"unified": 3}', r"perception_codec_kwargs\['unified'\]=3"),
        ('{"unified": {"near": 4.0}}', "give both `near` and `far`"),  # the codec's own check
        ('{"unified": {"near": 5.0, "far": 1.0}}', "near < far"),
        ('{"unified": {"zoom": 2}}', "rejected by the unified codec"),
    ]
    for value, message in bad:
        with pytest.raises(MMPhysInputError, match=message):
            parse_config(StudentTrainConfig, ["--dataset", str(dataset_dir), "--alignment_loss_weight", "0",
                                              "--perception_codec_kwargs", value])
    # the trainer refuses it in its constructor, before any model is loaded
    from mmphys_diffusers.training.teacher import TeacherTrainer

    with pytest.raises(MMPhysInputError, match="perception_codec_kwargs"):
        TeacherTrainer(TeacherTrainConfig(dataset=str(dataset_dir), perception_codec_kwargs={"unified": {"far": 2.0}}))


def test_student_teacher_model_optional_only_without_alignment(tmp_path, dataset_dir):
    baseline = StudentTrainConfig(dataset=str(dataset_dir), alignment_loss_weight=0.0).validate()
    assert baseline.teacher_model == "" and not baseline.uses_teacher
    with pytest.raises(MMPhysInputError, match="teacher_model is empty but alignment_loss_weight=0.5"):
        StudentTrainConfig(dataset=str(dataset_dir)).validate()
    with pytest.raises(MMPhysInputError, match="or alignment_loss_weight 0"):
        parse_config(StudentTrainConfig, ["--dataset", str(dataset_dir), "--alignment_loss_weight", "0.1"])
    with pytest.raises(MMPhysInputError, match="model_index.json"):  # a given teacher folder is still checked
        StudentTrainConfig(dataset=str(dataset_dir), alignment_loss_weight=0.0, teacher_model=str(tmp_path)).validate()


def test_warmup_stable_decay_holds_then_decays_linearly_to_zero(dataset_dir):
    """WSD: the warm-up and plateau equal `constant_with_warmup`, then the rate falls linearly to 0."""
    import torch
    from diffusers.optimization import get_scheduler

    from mmphys_diffusers.training.trainer import build_lr_scheduler

    def rates(scheduler, n):
        out = []
        for _ in range(n):
            out.append(scheduler.get_last_lr()[0])
            scheduler.optimizer.step()
            scheduler.step()
        return out

    def optimizer():
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)

    config = TeacherTrainConfig(dataset=str(dataset_dir), max_train_steps=20, lr_warmup_steps=4,
                                lr_scheduler="warmup_stable_decay", lr_decay_steps=8)
    config.validate()
    wsd = rates(build_lr_scheduler(config, optimizer()), 21)
    constant = rates(get_scheduler("constant_with_warmup", optimizer=optimizer(), num_warmup_steps=4, num_training_steps=20), 12)
    assert wsd[:12] == pytest.approx(constant)
    assert wsd[12:] == pytest.approx([2.0 * (1 - k / 8) for k in range(8)] + [0.0])
