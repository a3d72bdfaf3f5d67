"""Build an MMPhysVideo teacher from a base pipeline, sample all three modes, save and reload.

Runs offline on CPU with a random tiny Wan config (seconds). For a real backbone pass a
diffusers folder or Hub id, e.g. `--base Wan-AI/Wan2.1-T2V-1.3B-Diffusers` (GPU recommended).

    python examples/python/teacher_quickstart.py --out outputs/quickstart
"""

import argparse
from pathlib import Path

import torch

from mmphys_diffusers import ControlLinkTransformer3DModel, MMPhysVideoPipeline, MMPhysVideoTeacherPipeline
from mmphys_diffusers.backbones import load_base_pipeline
from mmphys_diffusers.perception import decode_to_visualization
from mmphys_diffusers.utils.video_io import tile_videos, write_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="tiny-wan", help="tiny-wan, tiny-cogvideox, a pipeline folder or a Hub id")
    parser.add_argument("--out", default="outputs/quickstart")
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    out = Path(args.out)

    base = load_base_pipeline(args.base)
    teacher = MMPhysVideoTeacherPipeline(
        vae=base.vae,
        text_encoder=base.text_encoder,
        tokenizer=base.tokenizer,
        transformer=ControlLinkTransformer3DModel.from_transformer(base.transformer),
        scheduler=base.scheduler,
    )
    common = dict(num_frames=args.frames, height=args.size, width=args.size, num_inference_steps=args.steps)
    prompt = "a red ball falls and bounces on the floor"

    joint = teacher(prompt, mode="joint", generator=torch.Generator().manual_seed(0), **common)
    # RGB -> perception: read the perception out of the RGB video we just made
    readout = teacher(prompt, mode="readout", video=joint.frames[0], generator=torch.Generator().manual_seed(1), **common)
    # perception -> RGB: generate RGB that follows the perception video
    control = teacher(prompt, mode="control", perception_video=joint.perception_frames[0], generator=torch.Generator().manual_seed(2), **common)

    panels = [
        joint.frames[0],
        decode_to_visualization("unified", joint.perception_frames[0].transpose(0, 3, 1, 2))[..., : args.size, :],
        decode_to_visualization("unified", readout.perception_frames[0].transpose(0, 3, 1, 2))[..., : args.size, :],
        control.frames[0],
    ]
    video = write_video(out / "teacher_modes.mp4", tile_videos(panels), fps=8)
    print(f"joint RGB | joint perception | readout perception | control RGB: {video}")

    teacher.save_pretrained(out / "teacher")
    reloaded = MMPhysVideoTeacherPipeline.from_pretrained(out / "teacher")
    again = reloaded(prompt, mode="joint", generator=torch.Generator().manual_seed(0), **common)
    print("reloaded teacher reproduces the joint sample:", bool(abs(again.frames - joint.frames).max() < 1e-3))

    # The student is architecturally the base model: a standard pipeline around the plain transformer.
    student = MMPhysVideoPipeline(**{k: getattr(base, k) for k in ("vae", "text_encoder", "tokenizer", "transformer", "scheduler")})
    student.save_pretrained(out / "student")
    print(f"student folder (loads with stock DiffusionPipeline.from_pretrained): {out / 'student'}")


if __name__ == "__main__":
    main()
