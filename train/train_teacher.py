#!/usr/bin/env python
"""Train the MMPhysVideo Bidirectionally Controlled Teacher (accelerate; 1 GPU, DDP, FSDP or DeepSpeed).

    accelerate launch train/train_teacher.py --config train/configs/teacher_wan_1.3b.json
    python train/train_teacher.py --pretrained_model tiny-wan --dataset outputs/sim --max_train_steps 20

Every option of `TeacherTrainConfig` (mmphys_diffusers/training/config.py) is a flag; flags
override the --config file. See docs/training.md.
"""

import sys

from mmphys_diffusers.training import run_cli
from mmphys_diffusers.training.teacher import main

if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:], prog="train_teacher.py"))
