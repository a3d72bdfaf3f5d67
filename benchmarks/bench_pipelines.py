"""Per-denoising-step latency and peak memory: student and teacher pipelines vs the stock diffusers pipeline.

All three pipelines share the same components (same seed, same transformer weights; the teacher is
`ControlLinkTransformer3DModel.from_transformer(base)`) and run the same call in ONE run of this script,
so the reported numbers are ratios at one config:

    student / stock   (goal <= 1.02: the student adds nothing at inference)
    teacher / stock   (goal <= 2.2:  the teacher runs two streams through the shared blocks)

Latency: the time between consecutive `callback_on_step_end` calls (one denoising step each, CFG
included), with the first step of every call dropped (warm-up), pipelines interleaved per repeat;
the median over all steps of all repeats is reported, as wall time and (CPU) as the calling thread's
CPU time, which with `--threads 1` is the whole compute and is not inflated by other processes.

Peak memory:
    * CPU: every pipeline runs in its own fresh subprocess: a 2-step warm-up call, then freed heap
      is returned to the OS (`malloc_trim`) and a thread polls the resident set size
      (/proc/self/statm, every 0.5 ms) during one measured call; we report max RSS during the call
      minus RSS before it. It counts everything the call allocates (text encoding, activations;
      output_type="latent" skips the VAE decode), at page granularity.
    * CUDA: `torch.cuda.max_memory_allocated()` after `reset_peak_memory_stats()`, minus the memory
      allocated before the call.

Usage:
    python benchmarks/bench_pipelines.py                       # small CPU config, both backbones
    python benchmarks/bench_pipelines.py --out docs/benchmarks_pipelines.md
    python benchmarks/bench_pipelines.py --real-config cogvideox-2b --device cuda --dtype bfloat16
The real configs use random weights of the published transformer sizes (CogVideoX-2B, Wan2.1-1.3B),
random prompt embeddings and a VAE of the right latent shape that never runs (output_type="latent").
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmphys_diffusers.backbones import get_backbone_adapter, tiny_components  # noqa: E402
from mmphys_diffusers.pipelines import MMPhysVideoPipeline, MMPhysVideoTeacherPipeline  # noqa: E402

# stock_x2 = the stock pipeline on a batch of two identical prompts: the cost of running the backbone on
# twice the batch, i.e. the floor for a two-stream teacher (teacher / stock_x2 isolates the teacher's own overhead).
VARIANTS = ("stock", "student", "teacher", "stock_x2")

# Small CPU configs: the tiny components with a wider/deeper transformer, so a step is ~0.1 s on 2 cores.
SMALL_CPU = {
    "cogvideox": {
        "transformer": {"num_attention_heads": 4, "attention_head_dim": 32, "num_layers": 4, "time_embed_dim": 64,
                        "sample_height": 16, "sample_width": 16, "sample_frames": 25},
        "video": {"num_frames": 25, "height": 128, "width": 128},
    },
    "wan": {
        "transformer": {"num_attention_heads": 4, "attention_head_dim": 32, "num_layers": 4, "ffn_dim": 512},
        "video": {"num_frames": 25, "height": 128, "width": 128},
    },
}

REAL = {
    "cogvideox-2b": ("cogvideox", "CogVideoX-2B", {"num_frames": 49, "height": 480, "width": 720}),
    "wan-1.3b": ("wan", "Wan2.1-1.3B", {"num_frames": 81, "height": 480, "width": 832}),
}


def build_components(
    backbone: str, real_config: str | None, device: str, dtype: torch.dtype, video_override=None, num_layers=None
) -> tuple[dict, dict]:
    """Components on `device` and the video size for one config (optionally a smaller video / fewer layers)."""
    if real_config is None:
        spec = SMALL_CPU[backbone]
        comps = tiny_components(f"tiny-{backbone}", seed=0, transformer=spec["transformer"])
        video = dict(spec["video"])
    else:
        backbone, ref_name, video = REAL[real_config]
        if backbone == "cogvideox":
            from mmphys_diffusers.models.control_link_transformer_cogvideox import REFERENCE_CONFIGS
        else:
            from mmphys_diffusers.models.control_link_transformer_wan import REFERENCE_CONFIGS
        config = dict(REFERENCE_CONFIGS[ref_name])
        if num_layers:
            config["num_layers"] = num_layers
        # Only the transformer is real-sized; the VAE is small but has the real latent channels and
        # compression factors (it never runs: output_type="latent"), and prompts come as embeddings.
        vae_override = {"latent_channels": 16} if backbone == "cogvideox" else {"z_dim": 16, "latents_mean": [0.0] * 16, "latents_std": [1.0] * 16}
        comps = tiny_components(f"tiny-{backbone}", seed=0, vae=vae_override)
        with torch.device(device):
            comps["transformer"] = get_backbone_adapter(backbone).transformer_class(**config)
    if video_override:
        video = dict(zip(("num_frames", "height", "width"), video_override))
    for key in ("vae", "text_encoder", "transformer"):
        comps[key] = comps[key].to(device=device).eval()
        if dtype != torch.float32:
            comps[key] = comps[key].to(dtype=dtype)
    return comps, video


def build_pipeline(variant: str, comps: dict, teacher_transformer=None):
    adapter = get_backbone_adapter(comps["transformer"])
    if variant in ("stock", "stock_x2"):
        return adapter.stock_pipeline_class(**comps)
    if variant == "student":
        return MMPhysVideoPipeline(**comps)
    return MMPhysVideoTeacherPipeline(**{**comps, "transformer": teacher_transformer})


def call_kwargs(variant: str, comps: dict, video: dict, steps: int, real: bool, device: str, dtype: torch.dtype) -> dict:
    adapter = get_backbone_adapter(comps["transformer"])
    kw = dict(video, num_inference_steps=steps, guidance_scale=6.0, output_type="latent")
    if real:
        cfg = comps["transformer"].config
        length = adapter.default_sequence_length(comps["transformer"])
        width = cfg.text_embed_dim if adapter.name == "cogvideox" else cfg.text_dim
        g = torch.Generator().manual_seed(0)
        batch = 2 if variant == "stock_x2" else 1
        kw["prompt_embeds"] = torch.randn(1, length, width, generator=g).to(device, dtype).repeat(batch, 1, 1)
        kw["negative_prompt_embeds"] = torch.randn(1, length, width, generator=g).to(device, dtype).repeat(batch, 1, 1)
    else:
        kw["prompt"] = ["a ball bounces"] * 2 if variant == "stock_x2" else "a ball bounces"
        kw["max_sequence_length"] = 16
    if variant == "teacher":
        kw["perception_cue"] = None
    return kw


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(pipe, kw: dict, device: str) -> tuple[list[float], list[float], list[float]]:
    """Per denoising step 2..N of one call: wall time, calling-thread CPU time, and the CPU time spent
    outside the transformer's forward (the pipeline's own overhead), in seconds."""
    wall: list[float] = []
    cpu: list[float] = []
    in_forward = [0.0]
    forward_marks: list[float] = []
    transformer = pipe.transformer
    forward = transformer.forward

    def timed_forward(*args, **kwargs):
        start = time.thread_time()
        try:
            return forward(*args, **kwargs)
        finally:
            in_forward[0] += time.thread_time() - start

    def on_step(p, i, t, tensors):
        sync(device)
        wall.append(time.perf_counter())
        cpu.append(time.thread_time())
        forward_marks.append(in_forward[0])
        return {}

    pipe.set_progress_bar_config(disable=True)
    transformer.forward = timed_forward  # instance attribute: nn.Module.__call__ picks it up
    try:
        pipe(**kw, generator=torch.Generator().manual_seed(0), callback_on_step_end=on_step)
    finally:
        del transformer.forward
    steps = range(1, len(wall))
    return (
        [wall[i] - wall[i - 1] for i in steps],
        [cpu[i] - cpu[i - 1] for i in steps],
        [(cpu[i] - cpu[i - 1]) - (forward_marks[i] - forward_marks[i - 1]) for i in steps],
    )


def measure_latency(backbone, real_config, device, dtype, steps, repeats, video_override=None, num_layers=None) -> dict:
    comps, video = build_components(backbone, real_config, device, dtype, video_override, num_layers)
    adapter = get_backbone_adapter(comps["transformer"])
    teacher_transformer = adapter.build_teacher(comps["transformer"]).eval()
    pipes = {v: build_pipeline(v, comps, teacher_transformer) for v in VARIANTS}
    kws = {v: call_kwargs(v, comps, video, steps, real_config is not None, device, dtype) for v in VARIANTS}
    for v in VARIANTS:  # warm-up
        time_steps(pipes[v], {**kws[v], "num_inference_steps": 2}, device)
    wall = {v: [] for v in VARIANTS}
    cpu = {v: [] for v in VARIANTS}
    overhead = {v: [] for v in VARIANTS}
    for r in range(repeats):
        # rotate the order so that no pipeline always follows the same one (cache state)
        for v in VARIANTS[r % len(VARIANTS):] + VARIANTS[: r % len(VARIANTS)]:
            w, c, o = time_steps(pipes[v], kws[v], device)
            wall[v].extend(w)
            cpu[v].extend(c)
            overhead[v].extend(o)
    return {
        "video": video,
        "samples": {v: len(s) for v, s in wall.items()},
        "median_s": {v: statistics.median(s) for v, s in wall.items()},
        "min_s": {v: min(s) for v, s in wall.items()},
        "cpu_median_s": {v: statistics.median(s) for v, s in cpu.items()},
        "overhead_median_s": {v: statistics.median(s) for v, s in overhead.items()},
    }


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssSampler(threading.Thread):
    """Polls the resident set size every `interval` seconds and keeps the maximum."""

    def __init__(self, interval: float = 0.0005):
        super().__init__(daemon=True)
        self.interval, self.peak, self._stop_event = interval, current_rss_bytes(), threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, current_rss_bytes())
            time.sleep(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, current_rss_bytes())


def release_free_heap() -> None:
    """Give freed heap pages back to the OS so the next call's growth shows in the RSS."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory_child(args) -> None:
    """Run in a fresh process: a warm-up call, then one measured call; print the peak memory growth in bytes."""
    dtype = getattr(torch, args.dtype)
    comps, video = build_components(args.backbone, args.real_config, args.device, dtype, args.video, args.num_layers)
    adapter = get_backbone_adapter(comps["transformer"])
    teacher_transformer = None
    if args.variant == "teacher":
        # Keep only the teacher's weights alive (from_transformer copies the base weights).
        teacher_transformer = adapter.build_teacher(comps["transformer"]).eval()
        comps["transformer"] = teacher_transformer
    pipe = build_pipeline(args.variant, comps, teacher_transformer)
    pipe.set_progress_bar_config(disable=True)
    kw = call_kwargs(args.variant, comps, video, args.steps, args.real_config is not None, args.device, dtype)
    pipe(**{**kw, "num_inference_steps": 2}, generator=torch.Generator().manual_seed(0))  # lazy inits
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        pipe(**kw, generator=torch.Generator().manual_seed(0))
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        release_free_heap()
        before = current_rss_bytes()
        sampler = RssSampler()
        sampler.start()
        pipe(**kw, generator=torch.Generator().manual_seed(0))
        peak = sampler.stop() - before
    print("PEAK" + json.dumps({"bytes": int(peak)}))


def measure_memory(backbone, real_config, device, dtype_name, steps, runs: int, extra_args=()) -> dict:
    """Median over `runs` fresh processes of each variant's peak memory growth (bytes)."""
    samples = {v: [] for v in VARIANTS}
    for _, variant in [(r, v) for r in range(runs) for v in VARIANTS]:
        cmd = [sys.executable, os.path.abspath(__file__), "--child-variant", variant, "--backbone", backbone,
               "--device", device, "--dtype", dtype_name, "--steps", str(steps)]
        if real_config:
            cmd += ["--real-config", real_config]
        cmd += list(extra_args)
        # Every allocation >= 64 KiB gets its own mmap and goes back to the OS when freed, so the RSS
        # follows the live tensors instead of glibc's heap history.
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        samples[variant].append(json.loads(proc.stdout.split("PEAK", 1)[1])["bytes"])
    return {v: int(statistics.median(s)) for v, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", choices=["cogvideox", "wan", "both"], default="both")
    parser.add_argument("--real-config", choices=sorted(REAL), default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--steps", type=int, default=6, help="denoising steps per call (the first is dropped)")
    parser.add_argument("--repeats", type=int, default=5, help="calls per pipeline (interleaved)")
    parser.add_argument("--video", type=lambda v: tuple(int(x) for x in v.split(",")), default=None,
                        help="override the video size as F,H,W (e.g. 9,64,64 to smoke-test --real-config on CPU)")
    parser.add_argument("--num-layers", type=int, default=None, help="override the real config's block count (smoke tests)")
    parser.add_argument("--memory-runs", type=int, default=3, help="fresh processes per variant for peak memory (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default=None, help="write a markdown report here")
    parser.add_argument("--child-variant", choices=VARIANTS, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_variant:
        args.variant = args.child_variant
        peak_memory_child(args)
        return

    dtype = getattr(torch, args.dtype)
    backbones = [REAL[args.real_config][0]] if args.real_config else (["cogvideox", "wan"] if args.backbone == "both" else [args.backbone])
    rows = []
    for backbone in backbones:
        lat = measure_latency(backbone, args.real_config, args.device, dtype, args.steps, args.repeats, args.video, args.num_layers)
        extra = []
        if args.video:
            extra += ["--video", ",".join(map(str, args.video))]
        if args.num_layers:
            extra += ["--num-layers", str(args.num_layers)]
        if args.threads:
            extra += ["--threads", str(args.threads)]
        mem = measure_memory(backbone, args.real_config, args.device, args.dtype, args.steps, args.memory_runs, extra)
        rows.append((backbone, lat, mem))
        print(json.dumps({"backbone": backbone, "latency": lat, "peak_bytes": mem}), flush=True)

    config = args.real_config or "small CPU config (tiny components, wider 4-layer transformer)"
    cpu_note = " CPU-time ratios use the calling thread's CPU time per step (`time.thread_time`), the whole compute with --threads 1 and less sensitive than wall time to other load on the machine." if args.device == "cpu" else ""
    lines = [
        f"Config: {config}; device {args.device} ({platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}); "
        f"dtype {args.dtype}; CFG on (guidance 6); {args.steps} steps per call, first step dropped; {args.repeats} interleaved repeats "
        f"per pipeline; step latency = median wall time per step.{cpu_note} Peak memory = growth during one call in a fresh process "
        f"({'CUDA max_memory_allocated' if args.device.startswith('cuda') else 'RSS polled every 0.5 ms after malloc_trim'}), "
        f"median of {args.memory_runs} processes.",
        "",
        "| backbone | video (F x H x W) | stock step | student step | teacher step | student/stock (wall) | teacher/stock (wall) | "
        "student/stock (CPU time) | teacher/stock (CPU time) | teacher/stock_x2 (CPU time) | stock peak | student peak | teacher peak | "
        "student/stock mem | teacher/stock mem | teacher/stock_x2 mem |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backbone, lat, mem in rows:
        med, cpu = lat["median_s"], lat["cpu_median_s"]
        v = lat["video"]
        mib = {k: b / 2**20 for k, b in mem.items()}
        lines.append(
            f"| {backbone} | {v['num_frames']} x {v['height']} x {v['width']} | {med['stock'] * 1e3:.1f} ms | {med['student'] * 1e3:.1f} ms | "
            f"{med['teacher'] * 1e3:.1f} ms | {med['student'] / med['stock']:.3f} | {med['teacher'] / med['stock']:.3f} | "
            f"{cpu['student'] / cpu['stock']:.3f} | {cpu['teacher'] / cpu['stock']:.3f} | {cpu['teacher'] / cpu['stock_x2']:.3f} | "
            f"{mib['stock']:.1f} MiB | {mib['student']:.1f} MiB | {mib['teacher']:.1f} MiB | "
            f"{mem['student'] / max(mem['stock'], 1):.3f} | {mem['teacher'] / max(mem['stock'], 1):.3f} | "
            f"{mem['teacher'] / max(mem['stock_x2'], 1):.3f} |"
        )
    lines += [
        "",
        "Pipeline overhead: CPU time per step spent outside the transformer forward (scheduler, guidance, "
        "casts, callbacks); the transformer calls themselves are the same calls in stock and student.",
        "",
        "| backbone | stock overhead | student overhead | teacher overhead | (student - stock) overhead / stock step |",
        "|---|---|---|---|---|",
    ]
    for backbone, lat, _ in rows:
        ovh, cpu = lat["overhead_median_s"], lat["cpu_median_s"]
        lines.append(
            f"| {backbone} | {ovh['stock'] * 1e3:.3f} ms | {ovh['student'] * 1e3:.3f} ms | {ovh['teacher'] * 1e3:.3f} ms | "
            f"{(ovh['student'] - ovh['stock']) / cpu['stock'] * 100:+.2f} % |"
        )
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(report + "\n")


if __name__ == "__main__":
    main()
