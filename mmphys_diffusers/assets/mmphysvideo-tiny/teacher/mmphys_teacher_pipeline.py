"""Written by mmphys-diffusers: lets `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`
find the teacher pipeline. It needs the package installed: `pip install mmphys-diffusers`."""

from mmphys_diffusers.pipelines.pipeline_mmphys_video_teacher import MMPhysVideoTeacherPipeline

__all__ = ["MMPhysVideoTeacherPipeline"]
