"""`mmphys curate INPUT --out DATASET`: MMPhysPipe data curation into the shared dataset format."""

from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "curate",
        help="curate videos into a dataset with perception cues (MMPhysPipe)",
        description=(
            "Ingest videos (files, frame folders, .txt lists or a dataset folder), localise the physical "
            "subjects, extract instance masks, depth and dense tracks, verify quality and write the shared "
            "dataset format. Re-runs resume; rejected clips are listed in <out>/report.jsonl."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video file(s), folder(s), .txt list(s) or a dataset folder")
    p.add_argument("--out", required=True, metavar="DATASET", help="output dataset folder")
    p.add_argument("--config", default=None, metavar="FILE", help="curation config (.json, or .toml on Python 3.11+)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (local) or actors (ray); 1 runs inline")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--limit", type=int, default=None, help="curate at most N sources")
    p.add_argument("--retry-failed", action="store_true", help="retry sources and clips that were rejected or failed before")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..curation import format_summary, load_config, run_curation
    from ..errors import MMPhysInputError

    if args.workers < 1:
        raise MMPhysInputError(f"--workers must be >= 1, got {args.workers}")
    if args.limit is not None and args.limit < 1:
        raise MMPhysInputError(f"--limit must be >= 1, got {args.limit}")
    config = load_config(args.config)
    summary = run_curation(
        args.inputs,
        args.out,
        config=config,
        workers=args.workers,
        executor=args.executor,
        limit=args.limit,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
    )
    print(format_summary(summary))
    return 0
