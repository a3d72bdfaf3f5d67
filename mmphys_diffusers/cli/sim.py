"""`mmphys sim`: generate a synthetic physics dataset with exact ground-truth cues."""

from __future__ import annotations

import argparse
import json


def _names(values: list[str] | None) -> list[str]:
    """Accept both ``--families a,b`` and ``--families a b``."""
    return [n.strip() for v in (values or []) for n in v.split(",") if n.strip()]


def register(subparsers) -> None:
    from ..simulation import SCENE_FAMILIES

    p = subparsers.add_parser(
        "sim",
        help="simulate synthetic physics clips (RGB + exact depth/instances/tracks/flow)",
        description="Simulate a deterministic 2-D physics world rendered with exact ground-truth cues, written in the "
        "shared dataset format (manifest.jsonl + clips/<id>/rgb.mp4 + cues.npz). Re-running with the same settings "
        "resumes: clips already in the manifest are skipped.",
    )
    p.add_argument("--num-clips", type=int, required=True, help="number of clips (ids 000000 .. N-1)")
    p.add_argument("--out", required=True, help="output dataset folder")
    p.add_argument("--frames", type=int, default=17, help="frames per clip (default 17)")
    p.add_argument("--size", type=int, default=64, help="square frame size in px (default 64, at least 32)")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate; physics is sub-stepped at 240 Hz (default 8)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed; clip i uses a seed derived from (seed, i)")
    p.add_argument(
        "--families", nargs="+", action="extend", default=None, metavar="FAMILY",
        help=f"scene families, comma or space separated (default: all of {', '.join(SCENE_FAMILIES)})",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--pseudo-rgb", nargs="+", action="extend", default=None, metavar="CUE",
        help="also write pseudo-RGB videos of these cues (registered perception codecs, e.g. depth,semantics)",
    )
    p.add_argument("--no-compress-cues", action="store_true", help="store cues.npz uncompressed (faster, ~20x larger)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..simulation import generate_dataset

    stats = generate_dataset(
        args.out,
        num_clips=args.num_clips,
        num_frames=args.frames,
        size=args.size,
        seed=args.seed,
        families=_names(args.families) or None,
        workers=args.workers,
        pseudo_rgb=_names(args.pseudo_rgb),
        fps=args.fps,
        compress_cues=not args.no_compress_cues,
        progress=not args.no_progress,
    )
    print(json.dumps(stats))
    return 0
