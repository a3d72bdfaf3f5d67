"""Human-readable renderings of pseudo-RGB videos (for pipelines, ComfyUI and reports)."""

from __future__ import annotations

import numpy as np

from .base import as_pseudo_rgb, get_codec
from .colors import colormap, instance_palette, to_uint8, vector_to_wheel
from .depth import DEFAULT_FAR, DEFAULT_NEAR, depth_to_unit_disparity


def decode_to_visualization(name: str, video, meta: dict | None = None) -> np.ndarray:
    """Decode a pseudo-RGB video of cue `name` and render it for people.

    * semantics: the decoded ids in the palette (clean colours);
    * depth: normalised disparity through a dark-to-bright colormap (near = bright);
    * xyz: the point map video as is;
    * tracks: displacement on the flow colour wheel, occluded points darkened to 30%;
    * flow: the colour wheel re-rendered from the decoded flow;
    * unified: three panels side by side: disparity colormap | ids in the palette | motion magnitude.

    Returns:
        uint8 ``[F, H, W, 3]`` (``[F, H, 3W, 3]`` for unified).
    """
    codec = get_codec(name)
    v = as_pseudo_rgb(video, f"{name} video")
    cues = codec.decode(v, meta)
    if name == "semantics":
        max_instances = int((meta or {}).get("max_instances", codec.max_instances))
        palette = instance_palette(max_instances + 1)
        return to_uint8(palette[cues["instances"]])
    if name == "depth":
        near = (meta or {}).get("near", DEFAULT_NEAR)
        far = (meta or {}).get("far", DEFAULT_FAR)
        return colormap(depth_to_unit_disparity(cues["depth"], near, far))
    if name == "xyz":
        return to_uint8(v.transpose(0, 2, 3, 1))
    if name == "tracks":
        f, h, w, _ = cues["tracks"].shape
        rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
        disp = cues["tracks"] - np.stack([cols, rows], -1)[None]
        scale = max(float(np.hypot(disp[..., 0], disp[..., 1]).max()), 1e-3)
        rgb = vector_to_wheel(disp[..., 0], disp[..., 1], scale)
        rgb = np.where(cues["visibility"][..., None], rgb, rgb * 0.3)
        return to_uint8(rgb)
    if name == "flow":
        fl = cues["flow"]
        scale = (meta or {}).get("max_flow") or max(float(np.hypot(fl[..., 0], fl[..., 1]).max()), 1e-3)
        return to_uint8(vector_to_wheel(fl[..., 0], fl[..., 1], scale))
    if name == "unified":
        rgb = v.transpose(0, 2, 3, 1)
        palette = instance_palette(max(int(cues["instances"].max()) + 1, 2))
        motion = np.repeat(rgb[..., 2:3], 3, -1)
        return np.concatenate([colormap(rgb[..., 0]), to_uint8(palette[cues["instances"]]), to_uint8(motion)], 2)
    return to_uint8(v.transpose(0, 2, 3, 1))
