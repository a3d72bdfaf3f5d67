"""MMPhysVideo nodes for ComfyUI.

Install: link or copy this folder to ``ComfyUI/custom_nodes/mmphys`` and
``pip install -e <mmphys-diffusers checkout>`` into ComfyUI's Python (docs/comfyui.md).
The nodes are thin: they convert ComfyUI values (IMAGE, MASK, custom types) to
mmphys_diffusers' arrays and call the library. ComfyUI itself is optional at import
time, so the pack also loads (and is tested) without it.
"""

from .nodes_perception import MMPhysDecodePerception, MMPhysExtractPseudoRGB
from .nodes_pipeline import MMPhysLoadLoRA, MMPhysLoadPipeline, MMPhysStudentTextToVideo, MMPhysTeacherGenerate
from .nodes_video import MMPhysLoadVideo, MMPhysSaveVideo

NODE_CLASS_MAPPINGS = {
    "MMPhysLoadPipeline": MMPhysLoadPipeline,
    "MMPhysLoadLoRA": MMPhysLoadLoRA,
    "MMPhysStudentTextToVideo": MMPhysStudentTextToVideo,
    "MMPhysTeacherGenerate": MMPhysTeacherGenerate,
    "MMPhysExtractPseudoRGB": MMPhysExtractPseudoRGB,
    "MMPhysDecodePerception": MMPhysDecodePerception,
    "MMPhysLoadVideo": MMPhysLoadVideo,
    "MMPhysSaveVideo": MMPhysSaveVideo,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "MMPhysLoadPipeline": "MMPhys Load Pipeline",
    "MMPhysLoadLoRA": "MMPhys Load LoRA",
    "MMPhysStudentTextToVideo": "MMPhys Student Text to Video",
    "MMPhysTeacherGenerate": "MMPhys Teacher (RGB + Perception)",
    "MMPhysExtractPseudoRGB": "MMPhys Extract Pseudo-RGB",
    "MMPhysDecodePerception": "MMPhys Decode Perception",
    "MMPhysLoadVideo": "MMPhys Load Video",
    "MMPhysSaveVideo": "MMPhys Save Video",
}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
