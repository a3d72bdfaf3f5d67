"""Scale-out through accelerate: the teacher script under 2 processes on CPU (DDP over gloo)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_teacher(world: Path, out: Path, *extra: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
        str(REPO / "train" / "train_teacher.py"),
        "--pretrained_model", "tiny-wan", "--dataset", str(world), "--output_dir", str(out),
        "--num_frames", "9", "--height", "32", "--width", "32", "--checkpointing_steps", "2",
        "--cache_latents", "--latent_cache_dir", str(world.parent / "cache"), "--report_to", "none",
        "--validation_num_inference_steps", "2", "--stream_dropout_prob", "0.5", *extra,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_process_ddp_teacher_run_and_resume(tmp_path):
    from safetensors.torch import load_file

    from mmphys_diffusers.simulation import generate_dataset

    world = tmp_path / "world"
    generate_dataset(world, num_clips=4, num_frames=9, size=32, seed=0, progress=False)
    out = tmp_path / "teacher"
    _launch_teacher(world, out, "--max_train_steps", "3")
    checkpoint = out / "checkpoint-2"
    # one RNG file per process proves accelerate ran 2 ranks (not 2 independent single-process runs)
    assert {p.name for p in checkpoint.glob("random_states_*.pkl")} == {"random_states_0.pkl", "random_states_1.pkl"}
    with open(checkpoint / "custom_checkpoint_0.pkl", "rb") as fh:
        noise_states = torch.load(fh, weights_only=False)["states"]
    assert len(noise_states) == 2 and not torch.equal(noise_states[0], noise_states[1])
    summary = json.loads((out / "train_summary.json").read_text())
    assert [p["step"] for p in summary["loss_curve"]] == [1, 2, 3]
    from mmphys_diffusers.pipelines import MMPhysVideoTeacherPipeline

    pipe = MMPhysVideoTeacherPipeline.from_pretrained(out)
    assert sum(p.abs().sum() for n, p in pipe.transformer.named_parameters() if "links" in n) > 0
    assert (out / "samples" / "final_0.mp4").is_file()

    # stop after the step-2 checkpoint, then resume with 2 processes: same weights as the straight run
    resumed = tmp_path / "resumed"
    _launch_teacher(world, resumed, "--max_train_steps", "2", "--num_validation_videos", "0")
    _launch_teacher(world, resumed, "--max_train_steps", "3", "--num_validation_videos", "0", "--resume_from_checkpoint", "latest")
    name = "transformer/diffusion_pytorch_model.safetensors"
    straight, continued = load_file(str(out / name)), load_file(str(resumed / name))
    for key in straight:
        torch.testing.assert_close(straight[key], continued[key], rtol=1e-5, atol=1e-6)
