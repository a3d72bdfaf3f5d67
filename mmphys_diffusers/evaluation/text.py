"""Text adherence for colours and counts: are the objects the prompt names in the video?"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Mapping

import numpy as np

from ..utils.video_io import to_uint8_frames
from .parsing import DEFAULT_COLOUR_THRESHOLD, _components, colour_masks
from .scene import palette

NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_NOUNS = r"(balls?|box(?:es)?|blocks?|cubes?|objects?|spheres?)"


def parse_prompt(prompt: str, colours: Mapping[str, tuple[int, int, int]] | None = None) -> dict[str, Any]:
    """Colours and object count a prompt asks for.

    The count is the number word before "objects" (or the sum of "N balls" and "N boxes")
    when the prompt states one, else the number of distinct colours it names (one
    object per named colour, e.g. "A red ball ...").

    Returns:
        colours: sorted palette colour names found as words; count: int or None.
    """
    colours = dict(colours or palette())
    words = re.findall(r"[a-z]+", prompt.lower())
    named = sorted({w for w in words if w in colours})
    count = None
    text = " ".join(words)
    m = re.search(r"\b(" + "|".join(k for k in NUMBER_WORDS if len(k) > 2) + r"|\d+) objects?\b", text)
    if m:
        count = _number(m.group(1))
    else:
        per_noun = {}
        for m in re.finditer(r"\b(" + "|".join(k for k in NUMBER_WORDS if len(k) > 2) + r"|\d+) " + _NOUNS + r"\b", text):
            noun = m.group(2).rstrip("s").replace("boxe", "box")
            per_noun[noun] = max(per_noun.get(noun, 0), _number(m.group(1)))
        if per_noun:
            count = sum(per_noun.values())
    if count is None and named:
        count = len(named)
    return {"colours": named, "count": count}


def _number(token: str) -> int:
    return int(token) if token.isdigit() else NUMBER_WORDS[token]


def detect_colours(
    frames,
    colours: Mapping[str, tuple[int, int, int]] | None = None,
    threshold: float = DEFAULT_COLOUR_THRESHOLD,
    min_area: int = 6,
    min_frame_fraction: float = 0.2,
) -> dict[str, int]:
    """Palette colours present in a video and how many objects of each.

    A colour is present when a component of at least `min_area` px has that colour in
    at least `min_frame_fraction` of the frames; its object count is the most common
    number of such components over those frames.

    Returns:
        colour name -> object count (only colours present).
    """
    colours = dict(colours or palette())
    frames = to_uint8_frames(frames)
    names = list(colours)
    masks = colour_masks(frames, np.array([colours[n] for n in names], np.uint8), threshold)
    found = {}
    for k, name in enumerate(names):
        counts = [len(_components(masks[t, k], min_area)) for t in range(len(frames))]
        present = [c for c in counts if c > 0]
        if len(present) >= max(1, min_frame_fraction * len(frames)):
            found[name] = Counter(present).most_common(1)[0][0]
    return found


def text_adherence(frames, prompt: str, colours: Mapping[str, tuple[int, int, int]] | None = None, **detect_kwargs: Any) -> dict[str, Any]:
    """Do the colours and the object count named in the prompt appear in the video?

    Returns:
        colour_recall: fraction of named colours found in the video (unitless).
        colour_precision: fraction of found palette colours that the prompt names.
        count_match: 1.0 when the number of objects found equals the prompt's count, else 0.0
            (None when the prompt states no count).
        adherence: mean of the three (those that are defined).
        expected / detected: what was asked and what was found.
    """
    colours = dict(colours or palette())
    asked = parse_prompt(prompt, colours)
    found = detect_colours(frames, colours, **detect_kwargs)
    named, seen = set(asked["colours"]), set(found)
    recall = len(named & seen) / len(named) if named else None
    precision = len(named & seen) / len(seen) if seen else (1.0 if not named else 0.0)
    total = sum(found.values())
    count_match = None if asked["count"] is None else float(total == asked["count"])
    parts = [v for v in (recall, precision, count_match) if v is not None]
    return {
        "colour_recall": recall,
        "colour_precision": precision,
        "count_match": count_match,
        "adherence": float(np.mean(parts)) if parts else None,
        "expected": asked,
        "detected": {"colours": found, "count": total},
    }
