import subprocess
import sys
from pathlib import Path

from mmphys_diffusers.utils.video_io import read_video

ROOT = Path(__file__).resolve().parents[1]


def test_teacher_quickstart_runs_offline(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples/python/teacher_quickstart.py"), "--out", str(tmp_path),
         "--frames", "5", "--size", "32", "--steps", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "reloaded teacher reproduces the joint sample: True" in proc.stdout
    frames, _ = read_video(tmp_path / "teacher_modes.mp4")
    assert frames.shape == (5, 32, 4 * 32 + 3 * 2, 3)
    assert (tmp_path / "student" / "model_index.json").exists()
    assert '"WanPipeline"' in (tmp_path / "student" / "model_index.json").read_text()
