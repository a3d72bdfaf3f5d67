#!/usr/bin/env python
"""The whole MMPhysVideo training chain, tiny, on CPU, in minutes (`make train-tiny`).

    python train/train_tiny.py --out outputs/train-tiny

1. simulate a synthetic physics world (and a second "new domain" of other scene families);
2. train the Bidirectionally Controlled Teacher (train/configs/tiny_teacher.json);
3. distil the single-stream student from it (tiny_student.json);
4. fine-tune LoRAs on the new domain for the student and the teacher (tiny_*_lora.json);
5. load every output with the pipelines, render a clip each, and write
   ``<out>/chain_summary.json`` + ``<out>/chain_summary.md`` (loss table and timings).

The tiny models are randomly initialised from fixed seeds, so the numbers only show that
the machinery trains (losses fall), not video quality.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "train" / "configs"


def _stage_args(config_name: str, out: Path, backbone: str, steps_scale: float, overrides: dict) -> list[str]:
    """Config file + the paths of this run (the shipped tiny configs point into outputs/train-tiny)."""
    cfg = json.loads((CONFIGS / config_name).read_text())
    args = ["--config", str(CONFIGS / config_name)]
    if not str(cfg.get("pretrained_model", "")).startswith("outputs/"):
        args += ["--pretrained_model", backbone]
    args += ["--max_train_steps", str(max(2, int(round(cfg["max_train_steps"] * steps_scale))))]
    for key, value in overrides.items():
        args += [f"--{key}", str(value)]
    return args


def _loss_rows(summary: dict, every: int) -> list[tuple[int, float]]:
    history = summary["history"]
    rows = [(h["step"], h["loss"]) for h in history if h["step"] == 1 or h["step"] % every == 0]
    if history and rows[-1][0] != history[-1]["step"]:
        rows.append((history[-1]["step"], history[-1]["loss"]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/train-tiny", help="output folder (data, teacher, student, LoRAs)")
    parser.add_argument("--backbone", default="tiny-wan", choices=["tiny-wan", "tiny-cogvideox"])
    parser.add_argument("--clips", type=int, default=16, help="clips in the main world (the new domain gets half)")
    parser.add_argument("--steps_scale", type=float, default=1.0, help="multiply every stage's max_train_steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import logging

    import torch

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from mmphys_diffusers.errors import MMPhysInputError
    from mmphys_diffusers.pipelines import MMPhysVideoPipeline, MMPhysVideoTeacherPipeline
    from mmphys_diffusers.simulation import generate_dataset
    from mmphys_diffusers.training.config import StudentTrainConfig, TeacherTrainConfig, parse_config
    from mmphys_diffusers.training.lora import load_teacher_lora
    from mmphys_diffusers.training.student import train_student
    from mmphys_diffusers.training.teacher import train_teacher

    out = Path(args.out)
    world, new_domain = out / "data" / "world", out / "data" / "new-domain"
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        generate_dataset(world, num_clips=args.clips, num_frames=9, size=32, seed=args.seed,
                         families=["free_fall", "projectile", "ramp"], progress=False)
        generate_dataset(new_domain, num_clips=max(2, args.clips // 2), num_frames=9, size=32, seed=args.seed + 1,
                         families=["collision", "multi_object"], progress=False)
        timings["simulate"] = time.perf_counter() - t0

        paths = {name: out / name for name in ("teacher", "student", "student-lora", "teacher-lora")}
        stages = [
            ("teacher", TeacherTrainConfig, train_teacher, "tiny_teacher.json",
             {"dataset": world, "output_dir": paths["teacher"], "seed": args.seed}),
            ("student", StudentTrainConfig, train_student, "tiny_student.json",
             {"dataset": world, "output_dir": paths["student"], "teacher_model": paths["teacher"], "seed": args.seed}),
            ("student-lora", StudentTrainConfig, train_student, "tiny_student_lora.json",
             {"dataset": new_domain, "output_dir": paths["student-lora"], "pretrained_model": paths["student"],
              "teacher_model": paths["teacher"], "seed": args.seed}),
            ("teacher-lora", TeacherTrainConfig, train_teacher, "tiny_teacher_lora.json",
             {"dataset": new_domain, "output_dir": paths["teacher-lora"], "pretrained_model": paths["teacher"], "seed": args.seed}),
        ]
        summaries = {}
        for name, cls, train_fn, config_name, overrides in stages:
            config = parse_config(cls, _stage_args(config_name, out, args.backbone, args.steps_scale, overrides))
            print(f"[train-tiny] {name}: {config.max_train_steps} steps -> {config.output_dir}", flush=True)
            t0 = time.perf_counter()
            summaries[name] = train_fn(config)
            timings[name] = time.perf_counter() - t0

        # every output loads with the pipelines and renders
        t0 = time.perf_counter()
        render = dict(num_frames=9, height=32, width=32, num_inference_steps=4, guidance_scale=1.0, output_type="np")
        teacher = MMPhysVideoTeacherPipeline.from_pretrained(paths["teacher"])
        joint = teacher("a ball rolls down a ramp", mode="joint", generator=torch.Generator().manual_seed(0), **render)
        student = MMPhysVideoPipeline.from_pretrained(paths["student"])
        plain = student("a ball rolls down a ramp", generator=torch.Generator().manual_seed(0), **render).frames
        student.load_lora_weights(paths["student-lora"], adapter_name="new-domain")
        with_lora = student("a ball rolls down a ramp", generator=torch.Generator().manual_seed(0), **render).frames
        load_teacher_lora(teacher, paths["teacher-lora"], adapter_name="new-domain")
        teacher("two balls collide", mode="joint", generator=torch.Generator().manual_seed(0), **render)
        timings["load_and_render"] = time.perf_counter() - t0
        checks = {
            "teacher_joint_shapes": [list(joint.frames.shape), list(joint.perception_frames.shape)],
            "student_lora_changes_output": float(abs(with_lora - plain).max()),
        }
    except MMPhysInputError as exc:
        print(f"train_tiny.py: error: {exc}", file=sys.stderr)
        return 2

    result = {
        "backbone": args.backbone,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "checks": checks,
        "stages": {
            name: {
                "metrics": s.get("metrics", {}),
                "loss_curve": [{"step": st, "loss": round(l, 5)} for st, l in _loss_rows(s, every=10)],
            }
            for name, s in summaries.items()
        },
    }
    (out / "chain_summary.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# train-tiny chain ({args.backbone})", "", "| stage | steps | first-k mean loss | last-k mean loss | wall time (s) |", "|---|---|---|---|---|"]
    for name, s in summaries.items():
        m = s.get("metrics", {})
        lines.append(f"| {name} | {m.get('global_step')} | {m.get('loss_first', float('nan')):.4f} | {m.get('loss_last', float('nan')):.4f} | {timings[name]:.1f} |")
    lines += ["", f"simulate: {timings['simulate']:.1f} s; load + render all outputs: {timings['load_and_render']:.1f} s", ""]
    for name, s in summaries.items():
        lines += [f"## {name}: loss by step", "", "| step | loss |", "|---|---|"]
        lines += [f"| {st} | {l:.4f} |" for st, l in _loss_rows(s, every=10)]
        lines.append("")
    (out / "chain_summary.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"[train-tiny] done: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
