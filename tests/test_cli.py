import subprocess
import sys

import numpy as np

from mmphys_diffusers.cli.main import main
from mmphys_diffusers.utils.video_io import read_video


def test_demo_writes_side_by_side_video(tmp_path, capsys):
    assert main(["demo", "--simulate", "--out", str(tmp_path), "--size", "64", "--frames", "9", "--seed", "1"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    frames, _ = read_video(printed)
    # RGB + 5 cue panels of 64 px with 2 px gaps, plus a 14 px label header
    assert frames.shape == (9, 64 + 14, 6 * 64 + 5 * 2, 3)
    assert (tmp_path / "sim_free_fall_seed1.png").exists()
    # the RGB panel moves: a falling object changes the frames
    assert np.abs(frames[0, 14:, :64].astype(int) - frames[-1, 14:, :64].astype(int)).mean() > 1.0


def test_cli_reports_bad_input_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mmphys_diffusers.cli.main", "sim", "--num-clips", "1", "--out", str(tmp_path), "--frames", "1"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr
