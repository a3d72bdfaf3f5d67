"""ComfyUI entry point when this whole repository is installed as a custom node
(ComfyUI-Manager / `comfy node install` clone the repo into custom_nodes/).
The nodes themselves live in comfy_nodes/; mmphys_diffusers must be pip-installed."""

from .comfy_nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
