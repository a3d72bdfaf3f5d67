"""JSON schema of a localisation answer under the chain-of-visual-evidence rule.

Every claim carries its visual evidence: the phenomenon cites frames (and the
subjects seen there), each subject cites at least one frame index with a box
``[x0, y0, x1, y1]`` in pixels of the clip as shown. VLM backends and the
classical motion localiser produce the same structure.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import MMPhysInputError

PHENOMENA = ("falling", "bouncing", "rolling", "sliding", "projectile", "colliding", "swinging", "floating", "other")

_BOX = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}

LOCALIZATION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Physical-subject localisation with chain-of-visual-evidence",
    "type": "object",
    "required": ["phenomenon", "subjects"],
    "properties": {
        "caption": {"type": "string"},
        "phenomenon": {
            "type": "object",
            "required": ["label", "evidence"],
            "properties": {
                "label": {"type": "string", "minLength": 1},
                "description": {"type": "string"},
                "evidence": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["frame", "observation"],
                        "properties": {
                            "frame": {"type": "integer", "minimum": 0},
                            "subject_ids": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                            "observation": {"type": "string"},
                        },
                    },
                },
            },
        },
        "subjects": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name", "evidence"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "name": {"type": "string", "minLength": 1},
                    "role": {"type": "string"},
                    "evidence": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["frame", "box"],
                            "properties": {
                                "frame": {"type": "integer", "minimum": 0},
                                "box": _BOX,
                                "observation": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}


def extract_json(text: str) -> Any:
    """Parse a model answer that may wrap its JSON in prose or a ```json fence."""
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, flags=re.S)
    candidate = fence.group(1) if fence else text
    try:
        return json.loads(candidate)
    except json.JSONDecodeError:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start >= 0 and end > start:
            try:
                return json.loads(candidate[start : end + 1])
            except json.JSONDecodeError:
                pass
    raise MMPhysInputError(f"localiser answer is not JSON: {text[:200]!r}")


def validate_localization(answer: Any, num_frames: int, height: int, width: int) -> dict[str, Any]:
    """Validate against `LOCALIZATION_SCHEMA` and the clip geometry; return a normalised copy.

    Boxes are clamped to the frame and reordered so x0 <= x1, y0 <= y1; frame
    indices outside the clip and empty boxes are errors (they cite no evidence).
    """
    import jsonschema

    if isinstance(answer, str):
        answer = extract_json(answer)
    try:
        jsonschema.validate(answer, LOCALIZATION_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        raise MMPhysInputError(f"localiser answer violates the evidence schema at {where}: {exc.message}") from exc
    ids = [s["id"] for s in answer["subjects"]]
    if len(set(ids)) != len(ids):
        raise MMPhysInputError(f"localiser answer has duplicate subject ids {ids}")
    for ev in answer["phenomenon"]["evidence"]:
        _check_frame(ev["frame"], num_frames, "phenomenon evidence")
        unknown = set(ev.get("subject_ids", [])) - set(ids)
        if unknown:
            raise MMPhysInputError(f"phenomenon evidence cites unknown subject id(s) {sorted(unknown)}; subjects are {ids}")
    for subject in answer["subjects"]:
        for ev in subject["evidence"]:
            _check_frame(ev["frame"], num_frames, f"subject {subject['id']} evidence")
            x0, y0, x1, y1 = ev["box"]
            x0, x1 = sorted((min(max(x0, 0.0), width), min(max(x1, 0.0), width)))
            y0, y1 = sorted((min(max(y0, 0.0), height), min(max(y1, 0.0), height)))
            if x1 - x0 < 1 or y1 - y0 < 1:
                raise MMPhysInputError(f"subject {subject['id']} evidence box {ev['box']} at frame {ev['frame']} is empty inside a {width}x{height} frame")
            ev["box"] = [float(x0), float(y0), float(x1), float(y1)]
    return answer


def _check_frame(frame: int, num_frames: int, what: str) -> None:
    if not 0 <= frame < num_frames:
        raise MMPhysInputError(f"{what} cites frame {frame}, outside the clip's 0..{num_frames - 1}")


def caption_from_localization(loc: dict[str, Any]) -> str:
    """A plain caption when the localiser gave none: names the subjects and the phenomenon."""
    if loc.get("caption"):
        return str(loc["caption"])
    names = [s["name"] for s in loc["subjects"]]
    label = loc["phenomenon"]["label"]
    if not names:
        return f"A scene showing {label} motion."
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{who[0].upper() + who[1:]} {'is' if len(names) == 1 else 'are'} {label}."
