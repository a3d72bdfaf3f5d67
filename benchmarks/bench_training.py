#!/usr/bin/env python
"""Training-cost benchmarks (CPU by default; `--device cuda` on a GPU).

1. Relation-alignment loss: forward+backward time and the size of one token-relation
   matrix as the token count grows (it is N x N per sample, which is why
   `alignment_token_grid` exists for full-size videos).
2. Steady-state optimizer-step time of the tiny teacher (two streams) and the tiny student
   (one stream + frozen teacher forward + alignment) on cached latents.

    python benchmarks/bench_training.py [--device cpu] [--steps 20] [--out docs/bench_training.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch


def bench_relation_loss(device: str, token_counts=(256, 1024, 2048, 4096), dim: int = 64, repeats: int = 3) -> list[dict]:
    from mmphys_diffusers.training.losses import AlignmentProjector, relation_alignment_loss

    rows = []
    projector = AlignmentProjector(dim, dim, hidden_dim=128).to(device)
    for n in token_counts:
        student = torch.randn(1, n, dim, device=device, requires_grad=True)
        teacher = torch.randn(1, n, dim, device=device)
        relation_alignment_loss(projector(student), teacher).backward()  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            relation_alignment_loss(projector(student), teacher).backward()
        if device == "cuda":
            torch.cuda.synchronize()
        ms = (time.perf_counter() - start) / repeats * 1000
        rows.append({"tokens": n, "fwd_bwd_ms": round(ms, 2), "relation_matrix_mib": round(n * n * 4 / 2**20, 1)})
    return rows


def bench_steps(steps: int) -> dict:
    from mmphys_diffusers.simulation import generate_dataset
    from mmphys_diffusers.training.config import StudentTrainConfig, TeacherTrainConfig
    from mmphys_diffusers.training.student import train_student
    from mmphys_diffusers.training.teacher import train_teacher

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_dataset(tmp / "world", num_clips=8, num_frames=9, size=32, seed=0, progress=False)
        common = dict(dataset=str(tmp / "world"), num_frames=9, height=32, width=32, report_to="none", cache_latents=True,
                      num_validation_videos=0, checkpointing_steps=10_000, max_train_steps=steps, train_batch_size=2)
        teacher = train_teacher(TeacherTrainConfig(pretrained_model="tiny-wan", output_dir=str(tmp / "teacher"), **common))
        student = train_student(StudentTrainConfig(pretrained_model="tiny-wan", teacher_model=str(tmp / "teacher"),
                                                   output_dir=str(tmp / "student"), projector_hidden_dim=32, **common))
    return {
        "teacher_s_per_step": round(teacher["train_seconds"] / steps, 4),
        "student_s_per_step": round(student["train_seconds"] / steps, 4),
        "steps": steps,
        "batch": 2,
        "video": "9x32x32, tiny-wan, cached latents",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    results = {
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "relation_loss": bench_relation_loss(args.device),
        "train_steps": bench_steps(args.steps),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
