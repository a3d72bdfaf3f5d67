"""Perceptual extractors, registered by name: segmentation, depth and dense tracks."""

from .base import DepthEstimator, Segmenter, Tracker
from .depth import ConstantDepth, DepthAnythingDepth, GroundPlaneDepth
from .segmentation import BoxPropagateSegmenter, Sam2VideoSegmenter
from .tracks import DISTracker, FarnebackTracker

__all__ = [
    "Segmenter",
    "DepthEstimator",
    "Tracker",
    "BoxPropagateSegmenter",
    "Sam2VideoSegmenter",
    "GroundPlaneDepth",
    "ConstantDepth",
    "DepthAnythingDepth",
    "FarnebackTracker",
    "DISTracker",
]
