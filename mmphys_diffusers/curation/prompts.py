"""The chain-of-visual-evidence prompt shown to VLM localisers."""

from __future__ import annotations

import json

from .schema import LOCALIZATION_SCHEMA, PHENOMENA

SYSTEM_PROMPT = (
    "You are a careful physics annotator for video clips. You only state what you can see, "
    "and every statement must cite visual evidence: the frame index where it is visible and, "
    "for objects, a bounding box. Answer with one JSON object and nothing else."
)


def build_prompt(frame_indices: list[int], width: int, height: int) -> str:
    """Text that follows the images; `frame_indices` are the clip frame numbers of the images in order."""
    return (
        f"The images are frames {frame_indices} of a {width}x{height} video clip, in temporal order.\n"
        "Follow the chain-of-visual-evidence rule:\n"
        f"1. Name the main physical phenomenon (one of {list(PHENOMENA)}) and cite the frames that show it.\n"
        "2. List every physical subject that carries the phenomenon (the objects that move or interact; "
        "not the static background). Give each an integer id from 1 and a short name.\n"
        "3. For every subject give evidence: for at least two of the frames, the frame index and the box "
        f"[x0, y0, x1, y1] in pixels of the {width}x{height} frame.\n"
        "4. Add a one-sentence caption describing the physical event.\n"
        "A claim without evidence is not allowed. Answer JSON only, matching this JSON schema:\n"
        + json.dumps(LOCALIZATION_SCHEMA["properties"], separators=(",", ":"))
    )


def sample_frame_indices(num_frames: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over the clip, first and last included."""
    if num_frames <= count:
        return list(range(num_frames))
    step = (num_frames - 1) / (count - 1)
    return sorted({int(round(i * step)) for i in range(count)})
