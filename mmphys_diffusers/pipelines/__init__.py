"""MMPhysVideo pipelines: the single-stream student and the two-stream teacher."""

from .pipeline_mmphys_video import MMPhysVideoPipeline, MMPhysVideoPipelineBase
from .pipeline_output import MMPhysVideoPipelineOutput, MMPhysVideoTeacherPipelineOutput

__all__ = [
    "MMPhysVideoPipeline",
    "MMPhysVideoPipelineBase",
    "MMPhysVideoPipelineOutput",
    "MMPhysVideoTeacherPipeline",
    "MMPhysVideoTeacherPipelineOutput",
]


def __getattr__(name):
    # The teacher pipeline imports the teacher models; load it on first use.
    if name == "MMPhysVideoTeacherPipeline":
        from .pipeline_mmphys_video_teacher import MMPhysVideoTeacherPipeline

        return MMPhysVideoTeacherPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
