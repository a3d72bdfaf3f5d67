"""MMPhysVideo for diffusers.

Public names are imported lazily so that `import mmphys_diffusers` stays cheap
(the CLI, the ComfyUI pack and the data tools do not all need the models).
"""

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> submodule that defines it
_LAZY_EXPORTS = {
    # errors
    "MMPhysInputError": "mmphys_diffusers.errors",
    # perception codecs
    "get_codec": "mmphys_diffusers.perception",
    "available_cues": "mmphys_diffusers.perception",
    # data
    "MMPhysVideoDataset": "mmphys_diffusers.data",
    "ClipRecord": "mmphys_diffusers.data",
    "ManifestWriter": "mmphys_diffusers.data",
    "read_manifest": "mmphys_diffusers.data",
    # backbones, models, pipelines
    "get_backbone_adapter": "mmphys_diffusers.backbones",
    "ControlLinkTransformer3DModel": "mmphys_diffusers.models",
    "AutoencoderKLTinyVideo": "mmphys_diffusers.models",
    "ControlLinkCogVideoXTransformer3DModel": "mmphys_diffusers.models",
    "ControlLinkWanTransformer3DModel": "mmphys_diffusers.models",
    "MMPhysVideoPipeline": "mmphys_diffusers.pipelines",
    "MMPhysVideoTeacherPipeline": "mmphys_diffusers.pipelines",
}

__all__ = ["__version__", *_LAZY_EXPORTS]


def __getattr__(name):
    if name in _LAZY_EXPORTS:
        value = getattr(import_module(_LAZY_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmphys_diffusers' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from .errors import MMPhysInputError  # noqa: F401
