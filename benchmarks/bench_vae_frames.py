#!/usr/bin/env python
"""Per-frame reconstruction PSNR and object colour recall of one or more video VAEs on held-out clips.

    python benchmarks/bench_vae_frames.py --data outputs/mmphysvideo-tiny-run5/data/heldout \\
        --vae windows=outputs/mmphysvideo-tiny-run5/vae-windows --vae bundled=mmphys_diffusers/assets/mmphysvideo-tiny/student/vae

A causal video VAE trained on short windows can score well on the frames it was trained on and poorly on
later ones; the mean PSNR hides where. This prints, per VAE and modality, the PSNR of each frame index
(MSE averaged over the clips), with the unified perception cue encoded by the recipe's fixed codec.

PSNR is dominated by the background. The evaluation finds objects by colour, so each VAE's object colour
recall is printed too: the share of object pixels whose decoded RGB direction stays within the parser's
8 degrees. `--strip out.png --strip-clips 3 7` saves the ground truth of those clips over each VAE's
round trip, every frame side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_recipe import load_recipe_module  # noqa: E402


def main(argv=None) -> int:
    from mmphys_diffusers.training.vae import VAEClips, build_vae, evaluate_colour_recall, evaluate_psnr_per_frame, reconstruct

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a dataset folder (manifest.jsonl), e.g. a recipe run's data/heldout")
    parser.add_argument("--vae", action="append", required=True, help="LABEL=FOLDER: a VAE folder or a pipeline folder; repeat")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--out", default=None, help="also write the table as JSON here")
    parser.add_argument("--strip", default=None, help="save a PNG: ground truth over each VAE's round trip, per clip")
    parser.add_argument("--strip-clips", type=int, nargs="*", default=[0], help="clip indices for --strip")
    args = parser.parse_args(argv)

    recipe = load_recipe_module()
    cue = recipe.PERCEPTION_CUE
    clips = VAEClips(args.data, [cue], args.frames, args.size, args.size, "uniform", 0, {cue: recipe.codec_kwargs_for(args.size)},
                     max_clips=args.clips)
    table, recall, strips = {}, {}, {i: [clips.clip_videos(i)["rgb"]] for i in args.strip_clips} if args.strip else {}
    for spec in args.vae:
        label, _, folder = spec.rpartition("=")
        vae = build_vae(folder).float().eval()
        table[label or folder] = evaluate_psnr_per_frame(vae, clips, "cpu")
        recall[label or folder] = evaluate_colour_recall(vae, clips, "cpu")
        for i, videos in strips.items():
            videos.append(reconstruct(vae, videos[0][None])[0][0].clamp(-1, 1))
    print(f"PSNR (dB) per frame, {clips.num_clips} clips of {args.data}")
    print("| vae | modality | mean | " + " | ".join(str(i) for i in range(args.frames)) + " |")
    print("|---|---|---|" + "---|" * args.frames)
    for label, rows in table.items():
        for modality, values in rows.items():
            print(f"| {label} | {modality} | {sum(values) / len(values):.2f} | " + " | ".join(f"{v:.1f}" for v in values) + " |")
    print("object colour recall (share of object pixels within 8 degrees): "
          + ", ".join(f"{label} {value}" for label, value in recall.items()))
    if args.out:
        Path(args.out).write_text(json.dumps({"psnr_per_frame": table, "colour_recall": recall}, indent=2))
    if strips:
        from PIL import Image

        rows = [torch.cat(list(v.permute(1, 2, 3, 0)), dim=1) for videos in strips.values() for v in videos]  # [H, F*W, 3]
        image = ((torch.cat(rows, dim=0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        Image.fromarray(image).save(args.strip)
        print(f"wrote {args.strip}: per clip, the ground truth then " + ", ".join(recall))
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    raise SystemExit(main())
