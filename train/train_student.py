#!/usr/bin/env python
"""Distil the single-stream MMPhysVideo student from a trained teacher (relation-based alignment).

    accelerate launch train/train_student.py --config train/configs/student_wan_1.3b.json
    python train/train_student.py --pretrained_model tiny-wan --teacher_model outputs/teacher --dataset outputs/sim

Every option of `StudentTrainConfig` (mmphys_diffusers/training/config.py) is a flag; flags
override the --config file. The saved student is a stock diffusers pipeline folder.
"""

import sys

from mmphys_diffusers.training import run_cli
from mmphys_diffusers.training.student import main

if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:], prog="train_student.py"))
