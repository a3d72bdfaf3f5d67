"""Physics-plausibility evaluation of generated videos (works on any video: generated or simulated).

- `parse_objects`: known-colour objects per frame (centroid, radius, bbox, masks);
- `physics`: permanence, gravity fit, ramp acceleration, penetration, bounce restitution, collision momentum;
- `motion_iou_metrics`: Physics-IQ-style motion-mask IoUs against a reference;
- `text_adherence`: colours and counts named in the prompt;
- `VideoFeatureNet` + `frechet_distance`: a Fréchet distance on our own features (not FVD);
- `run_physics_benchmark`: held-out simulated prompts -> models -> JSON + markdown table;
- `run_public_benchmark`: VideoPhy / VBench harness when the judges are available locally;
- `denoising_loss_by_noise_level`: a model's training objective on training vs held-out clips (memorisation check).
"""

from .corruptions import enlarge_object, flip_vertically, rebounce, remove_object, shift_object, time_reverse
from .denoising_loss import denoising_loss_by_noise_level
from .evaluate import METRIC_DIRECTIONS, evaluate_video, object_size_metrics
from .features import VideoFeatureNet, VideoFeatureNetConfig, frechet_distance, train_feature_network
from .motion import motion_iou_metrics, motion_masks
from .parsing import ObjectTracks, parse_objects
from .physics import (
    bounce_restitution,
    collision_momentum,
    gravity_metrics,
    object_permanence,
    penetration_metrics,
    ramp_metrics,
)
from .public import PUBLIC_BENCHMARKS, check_judge, read_prompts_file, run_public_benchmark
from .runner import (
    SIMULATOR_MODEL,
    SimulatorModel,
    format_paired_comparison,
    paired_comparison,
    VAERoundTrip,
    bootstrap_ci,
    evaluate_dataset,
    heldout_scenes,
    load_model,
    run_physics_benchmark,
)
from .scene import ObjectInfo, SceneInfo
from .text import parse_prompt, text_adherence

__all__ = [
    "METRIC_DIRECTIONS",
    "ObjectInfo",
    "ObjectTracks",
    "PUBLIC_BENCHMARKS",
    "SIMULATOR_MODEL",
    "SceneInfo",
    "SimulatorModel",
    "denoising_loss_by_noise_level",
    "format_paired_comparison",
    "paired_comparison",
    "VAERoundTrip",
    "VideoFeatureNet",
    "VideoFeatureNetConfig",
    "bootstrap_ci",
    "bounce_restitution",
    "check_judge",
    "collision_momentum",
    "enlarge_object",
    "evaluate_dataset",
    "evaluate_video",
    "flip_vertically",
    "frechet_distance",
    "gravity_metrics",
    "heldout_scenes",
    "load_model",
    "motion_iou_metrics",
    "motion_masks",
    "object_permanence",
    "object_size_metrics",
    "parse_objects",
    "parse_prompt",
    "penetration_metrics",
    "ramp_metrics",
    "read_prompts_file",
    "rebounce",
    "remove_object",
    "run_physics_benchmark",
    "run_public_benchmark",
    "shift_object",
    "text_adherence",
    "time_reverse",
    "train_feature_network",
]
