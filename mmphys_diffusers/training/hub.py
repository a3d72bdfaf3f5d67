"""Model cards and Hub upload for trained teachers, students and LoRAs.

The card's widget names a sample video that exists in the folder (checked here;
diffusers' CogVideoX LoRA script names files it never writes), and uploads skip
checkpoints, logs and latent caches (that script lets ``checkpoint-*`` through).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import MMPhysInputError
from ..utils.atomic import atomic_write_text

logger = logging.getLogger(__name__)

# Never uploaded: resumable state, logs, caches, temporary files.
UPLOAD_IGNORE_PATTERNS = (
    "checkpoint-*",
    ".checkpoint-*",
    "logs/*",
    "latent-cache/*",
    "*.tmp*",
    ".*",
)

_KIND_TEXT = {
    "teacher": (
        "a **Bidirectionally Controlled Teacher**: the backbone runs an RGB stream and a pseudo-RGB "
        "perception stream with shared weights, task embeddings and zero-initialised control links. "
        "Load it with `MMPhysVideoTeacherPipeline.from_pretrained`."
    ),
    "student": (
        "a single-stream **student** distilled from the MMPhysVideo teacher by relation-based "
        "representation alignment. It is a plain backbone checkpoint in a standard pipeline folder, "
        "so stock diffusers loads it; inference costs nothing extra."
    ),
    "lora": (
        "a **LoRA** adapter (`pytorch_lora_weights.safetensors`) for physics-domain fine-tuning. "
        "Load it with `pipe.load_lora_weights(<folder>)` and scale it with `pipe.set_adapters(..., adapter_weights=...)`."
    ),
}


def build_model_card(
    output_dir: str | os.PathLike,
    kind: str,
    base_model: str,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    sample_videos: Iterable[str] = (),
    validation_prompt: str | None = None,
    repo_id: str | None = None,
    tags: Iterable[str] = (),
) -> Path:
    """Write ``<output_dir>/README.md`` with Hub metadata and return its path.

    Args:
        kind: "teacher", "student", "lora", "teacher-lora" or "student-lora".
        sample_videos: paths *relative to output_dir*; each must exist (the widget names them).
    """
    from huggingface_hub import ModelCard, ModelCardData

    output_dir = Path(output_dir)
    base_kind = kind.split("-")[-1] if kind.endswith("lora") else kind
    if base_kind not in _KIND_TEXT:
        raise MMPhysInputError(f"model card kind {kind!r}: expected teacher, student, lora, teacher-lora or student-lora")
    samples = [str(s) for s in sample_videos]
    missing = [s for s in samples if not (output_dir / s).is_file()]
    if missing:
        raise MMPhysInputError(f"model card sample video(s) {missing} do not exist in {output_dir}")

    widget = [{"text": validation_prompt or "", "output": {"url": s}} for s in samples]
    all_tags = ["text-to-video", "diffusers", "mmphysvideo", "physics", *tags]
    if "lora" in kind:
        all_tags += ["lora", "diffusers-training"]
    card_data = ModelCardData(
        base_model=base_model if not Path(base_model).exists() and not base_model.startswith("tiny-") else None,
        library_name="diffusers",
        pipeline_tag="text-to-video",
        license="apache-2.0",
        tags=list(dict.fromkeys(all_tags)),
        widget=widget or None,
    )
    metric_rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in (metrics or {}).items()) or "| - | - |"
    sample_text = "\n".join(f"- [`{s}`]({s})" for s in samples) or "(no sample video was rendered)"
    name = repo_id or output_dir.name
    usage = _usage(kind, name)
    content = f"""---
{card_data.to_yaml()}
---

# {name}

This is {_KIND_TEXT[base_kind]}

Trained with [mmphys-diffusers](https://github.com/mmphys/mmphys-diffusers) (an open implementation of
MMPhysVideo, arXiv 2604.02817) from base model `{base_model}`.

## Usage

```python
{usage}
```

## Samples

Prompt: {validation_prompt or "(dataset caption)"}

{sample_text}

## Training metrics

| metric | value |
|---|---|
{metric_rows}

## Training configuration

```json
{json.dumps(dict(config), indent=2, default=str)}
```
"""
    card = ModelCard(content)
    path = output_dir / "README.md"
    atomic_write_text(path, str(card))
    return path


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _usage(kind: str, name: str) -> str:
    if kind == "teacher":
        return (
            "from mmphys_diffusers import MMPhysVideoTeacherPipeline\n\n"
            f'pipe = MMPhysVideoTeacherPipeline.from_pretrained("{name}")\n'
            'out = pipe("a ball rolls down a ramp", mode="joint")'
        )
    if kind == "student":
        return (
            "from mmphys_diffusers import MMPhysVideoPipeline\n\n"
            f'pipe = MMPhysVideoPipeline.from_pretrained("{name}")\n'
            'video = pipe("a ball rolls down a ramp").frames[0]'
        )
    return (
        "from mmphys_diffusers import MMPhysVideoPipeline\n\n"
        'pipe = MMPhysVideoPipeline.from_pretrained("<base student or pipeline>")\n'
        f'pipe.load_lora_weights("{name}", adapter_name="physics")\n'
        'pipe.set_adapters(["physics"], adapter_weights=[0.8])'
    )


def files_to_upload(folder: str | os.PathLike, ignore_patterns: Iterable[str] = UPLOAD_IGNORE_PATTERNS) -> list[str]:
    """The relative paths `upload_to_hub` would send (same filter as huggingface_hub's upload_folder)."""
    from huggingface_hub.utils import filter_repo_objects

    folder = Path(folder)
    rel = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return list(filter_repo_objects(rel, ignore_patterns=list(ignore_patterns)))


def upload_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload MMPhysVideo model",
) -> str:
    """Create (if needed) the model repo and upload `folder` without checkpoints/logs/caches; returns the repo URL."""
    from huggingface_hub import create_repo, upload_folder

    if not (Path(folder) / "README.md").is_file():
        raise MMPhysInputError(f"{folder} has no README.md model card; call build_model_card first")
    repo_url = create_repo(repo_id, token=token, private=private, exist_ok=True, repo_type="model")
    upload_folder(
        repo_id=repo_url.repo_id,
        folder_path=str(folder),
        token=token,
        commit_message=commit_message,
        ignore_patterns=list(UPLOAD_IGNORE_PATTERNS),
    )
    logger.info("uploaded %s to %s", folder, repo_url)
    return str(repo_url)
