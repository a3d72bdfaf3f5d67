"""Physical-subject localisers (registered in `LOCALIZERS`): "motion" (default), "openai", "transformers_vlm"."""

from .base import Localizer, LocalizerTimeout
from .motion import MotionEvidenceLocalizer

__all__ = ["Localizer", "LocalizerTimeout", "MotionEvidenceLocalizer"]

# HTTP and transformers backends import their heavy deps lazily, inside their constructors.
from . import openai_http, transformers_vlm  # noqa: E402,F401
