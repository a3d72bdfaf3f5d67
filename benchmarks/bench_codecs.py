"""Round-trip error and speed of every pseudo-RGB perception codec.

For each codec and size: encode a synthetic clip (`make_synthetic_cues`), then decode
(a) the float video, (b) the uint8-quantised video, (c) the video after an H.264 mp4
round trip through `write_video`/`read_video` at each CRF, and report the error of the
decoded cue against the ground truth, plus encode/decode time.

    python benchmarks/bench_codecs.py                      # prints a markdown table
    python benchmarks/bench_codecs.py --out docs/codec_bench.md --sizes 64 256 --crfs 18 28
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mmphys_diffusers.perception import get_codec, make_synthetic_cues
from mmphys_diffusers.perception.xyz import depth_to_xyz
from mmphys_diffusers.utils.video_io import DEFAULT_CRF, read_video, write_video


def _to_uint8(video: np.ndarray) -> np.ndarray:
    return (np.clip(video, 0, 1).transpose(0, 2, 3, 1) * 255.0 + 0.5).astype(np.uint8)


def _error(name: str, truth: dict, decoded: dict) -> str:
    """One human-readable error summary per codec."""
    if name == "semantics":
        return f"pixel acc {100 * np.mean(decoded['instances'] == truth['instances']):.2f}%"
    if name == "depth":
        rel = np.abs(decoded["depth"] - truth["depth"]) / truth["depth"]
        return (
            f"rel err mean {100 * rel.mean():.3f}% / median {100 * np.median(rel):.3f}% / "
            f"p99 {100 * np.quantile(rel, 0.99):.2f}% / max {100 * rel.max():.2f}%"
        )
    if name == "xyz":
        span = np.ptp(truth["xyz"].reshape(-1, 3), axis=0)
        err = (np.abs(decoded["xyz"] - truth["xyz"]) / span).max(-1)  # worst axis, as a fraction of its range
        return (
            f"err/range mean {100 * err.mean():.3f}% / median {100 * np.median(err):.3f}% / "
            f"max {100 * err.max():.2f}%"
        )
    if name == "tracks":
        e = np.linalg.norm(decoded["tracks"] - truth["tracks"], axis=-1)
        vis = np.mean(decoded["visibility"] == truth["visibility"])
        return f"px err mean {e.mean():.3f} / median {np.median(e):.3f} / max {e.max():.2f}; vis acc {100 * vis:.2f}%"
    if name == "flow":
        epe = np.linalg.norm(decoded["flow"] - truth["flow"], axis=-1)
        return f"EPE mean {epe.mean():.3f} / median {np.median(epe):.3f} / max {epe.max():.2f} px"
    if name == "unified":
        rel = np.abs(decoded["depth"] - truth["depth"]) / truth["depth"]
        acc = np.mean(decoded["instances"] == truth["instances"])
        mag = np.abs(decoded["flow_magnitude"] - np.linalg.norm(truth["flow"], axis=-1))
        return f"depth rel {100 * rel.mean():.2f}%; ids {100 * acc:.2f}%; flow-magnitude err {mag.mean():.3f} px"
    raise KeyError(name)


def _inputs(name: str, cues: dict) -> dict:
    if name == "xyz":
        h, w = cues["depth"].shape[1:]
        return {"xyz": depth_to_xyz(cues["depth"], fx=w, fy=w, cx=(w - 1) / 2, cy=(h - 1) / 2)}
    codec = get_codec(name)
    return {k: cues[k] for k in codec.required_arrays}


def bench(sizes: list[int], crfs: list[int], frames: int, instances: int) -> list[dict]:
    rows = []
    for size in sizes:
        # Motion scales with resolution so that 256 px clips move as far (relatively) as 64 px ones.
        cues = make_synthetic_cues(
            frames, size, size, instances, min_radius=max(5.0, size / 24), max_speed=size / 32, pan=size / 128, seed=0
        )
        for name in ("semantics", "depth", "xyz", "tracks", "flow", "unified"):
            codec = get_codec(name)
            inputs = _inputs(name, cues)
            truth = dict(cues, **inputs)
            t0 = time.perf_counter()
            video, meta = codec.encode(**inputs)
            t_enc = time.perf_counter() - t0
            t0 = time.perf_counter()
            exact = codec.decode(video, meta)
            t_dec = time.perf_counter() - t0
            row = {
                "codec": name,
                "size": size,
                "encode_ms": 1000 * t_enc / frames,
                "decode_ms": 1000 * t_dec / frames,
                "float": _error(name, truth, exact),
                "uint8": _error(name, truth, codec.decode(_to_uint8(video), meta)),
            }
            with tempfile.TemporaryDirectory() as tmp:
                for crf in crfs:
                    path = Path(tmp) / f"{name}.mp4"
                    write_video(path, _to_uint8(video), crf=crf)
                    back, _ = read_video(path)
                    row[f"h264_crf{crf}"] = _error(name, truth, codec.decode(back, meta))
            rows.append(row)
            print(f"done {name} @ {size}px", flush=True)
    return rows


def to_markdown(rows: list[dict], crfs: list[int], frames: int) -> str:
    cols = ["codec", "size", "float", "uint8"] + [f"h264_crf{c}" for c in crfs] + ["encode_ms", "decode_ms"]
    head = ["codec", "px", "float", "uint8"] + [f"H.264 CRF {c}" for c in crfs] + ["enc ms/frame", "dec ms/frame"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + (
        f"\n\n{frames} frames per clip of `make_synthetic_cues` (seed 0). Encode/decode times are per frame, "
        "numpy on one CPU process.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--crfs", type=int, nargs="+", default=[DEFAULT_CRF, 28])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--instances", type=int, default=24)
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    args = parser.parse_args()
    rows = bench(args.sizes, args.crfs, args.frames, args.instances)
    table = to_markdown(rows, args.crfs, args.frames)
    print(table)
    if args.out:
        from mmphys_diffusers.utils.atomic import atomic_write_text

        atomic_write_text(args.out, table)


if __name__ == "__main__":
    main()
