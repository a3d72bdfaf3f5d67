"""The ComfyUI node pack (comfy_nodes/), tested without ComfyUI installed.

Covers the V1 node contract (INPUT_TYPES / RETURN_TYPES / FUNCTION / CATEGORY), every
node on tiny inputs, the example workflows (API-format wiring, UI/API consistency, and
execution by a small re-implementation of ComfyUI's API-format executor) and errors.
"""

from __future__ import annotations

import inspect
import json
import sys
import types
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from comfy_nodes import NODE_CLASS_MAPPINGS as NODES  # noqa: E402
from comfy_nodes import NODE_DISPLAY_NAME_MAPPINGS as DISPLAY_NAMES  # noqa: E402
from comfy_nodes.convert import PerceptionPayload  # noqa: E402
from comfy_nodes.nodes_pipeline import MMPhysPipelineHandle  # noqa: E402
from mmphys_diffusers.errors import MMPhysInputError  # noqa: E402
from mmphys_diffusers.utils.video_io import read_video, write_video  # noqa: E402

WORKFLOW_DIR = ROOT / "examples" / "workflows"
TINY = "tiny-random:tiny-wan"
WIDGET_PRIMITIVES = ("INT", "FLOAT", "STRING", "BOOLEAN")
TINY_VIDEO = dict(num_frames=5, height=32, width=32, steps=2)


# ----------------------------------------------------------------------------- helpers


def input_specs(cls) -> dict[str, tuple]:
    types_ = cls.INPUT_TYPES()
    return {**types_.get("required", {}), **types_.get("optional", {})}


def is_widget(spec: tuple) -> bool:
    return isinstance(spec[0], list) or spec[0] in WIDGET_PRIMITIVES


def widget_names(cls) -> list[str]:
    """Order of a node's ``widgets_values`` in the UI format (seed widgets carry a control value after them)."""
    names = []
    for name, spec in input_specs(cls).items():
        if is_widget(spec):
            names.append(name)
            if len(spec) > 1 and spec[1].get("control_after_generate"):
                names.append(None)  # the "fixed"/"randomize" control has no API input
    return names


def check_widget_value(class_type: str, name: str, spec: tuple, value) -> None:
    where = f"{class_type}.{name}={value!r}"
    kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, list):
        assert value in kind, f"{where} not among {kind}"
    elif kind == "INT":
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif kind == "FLOAT":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), where
    elif kind == "STRING":
        assert isinstance(value, str), where
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), where
    else:
        raise AssertionError(f"{where}: a {kind} input must be linked, not given a literal")
    if kind in ("INT", "FLOAT"):
        assert opts.get("min", -np.inf) <= value <= opts.get("max", np.inf), f"{where} outside [{opts.get('min')}, {opts.get('max')}]"
    if kind == "INT" and opts.get("step", 1) > 1:
        # The front end rounds INT widgets to min % step + k * step; other values would not survive an edit.
        step = opts["step"]
        assert (value - opts.get("min", 0) % step) % step == 0, f"{where} is off the widget's step grid ({step} from {opts.get('min', 0)})"


def validate_api_prompt(prompt: dict) -> None:
    """ComfyUI's validate_prompt, in assertions: classes exist, links fit types, required inputs, widget ranges."""
    assert any(getattr(NODES[n["class_type"]], "OUTPUT_NODE", False) for n in prompt.values()), "prompt has no output node"
    for node_id, node in prompt.items():
        assert node["class_type"] in NODES, f"node {node_id}: unknown class {node['class_type']}"
        cls = NODES[node["class_type"]]
        specs = input_specs(cls)
        missing = set(cls.INPUT_TYPES()["required"]) - set(node["inputs"])
        assert not missing, f"node {node_id} ({node['class_type']}) misses required inputs {missing}"
        for name, value in node["inputs"].items():
            assert name in specs, f"node {node_id}: unknown input {name}"
            if isinstance(value, list):  # a link [source node id, output index]
                assert len(value) == 2 and value[0] in prompt, f"node {node_id}.{name}: bad link {value}"
                source_types = NODES[prompt[value[0]]["class_type"]].RETURN_TYPES
                assert 0 <= value[1] < len(source_types), f"node {node_id}.{name}: output index {value[1]} out of range"
                assert source_types[value[1]] == specs[name][0], f"node {node_id}.{name}: {source_types[value[1]]} != {specs[name][0]}"
            else:
                check_widget_value(node["class_type"], name, specs[name], value)


def check_output_value(type_name: str, value) -> None:
    """What a RETURN_TYPES entry promises at run time."""
    if type_name == "IMAGE":
        assert isinstance(value, torch.Tensor) and value.ndim == 4 and value.shape[-1] == 3 and value.dtype == torch.float32
        assert 0.0 <= float(value.min()) and float(value.max()) <= 1.0
    elif type_name == "MASK":
        assert isinstance(value, torch.Tensor) and value.ndim == 3 and value.dtype == torch.float32
        assert 0.0 <= float(value.min()) and float(value.max()) <= 1.0
    elif type_name == "MMPHYS_PIPELINE":
        assert isinstance(value, MMPhysPipelineHandle)
    elif type_name == "MMPHYS_PERCEPTION":
        assert isinstance(value, PerceptionPayload) and value.video.ndim == 4 and value.video.shape[1] == 3
    elif type_name in ("INT", "FLOAT", "STRING"):
        assert isinstance(value, {"INT": int, "FLOAT": float, "STRING": str}[type_name])
    else:
        raise AssertionError(f"unexpected output type {type_name}")


def run_node(class_type: str, **inputs):
    """Call a node like ComfyUI does (keyword inputs, under inference mode); returns (outputs tuple, ui dict or None)."""
    cls = NODES[class_type]
    with torch.inference_mode():
        result = getattr(cls(), cls.FUNCTION)(**inputs)
    ui = None
    if isinstance(result, dict):
        ui, result = result.get("ui"), result.get("result", ())
    assert isinstance(result, tuple) and len(result) == len(cls.RETURN_TYPES), f"{class_type} returned {type(result)}"
    for type_name, value in zip(cls.RETURN_TYPES, result):
        check_output_value(type_name, value)
    return result, ui


def execute_api_prompt(prompt: dict) -> tuple[dict, dict]:
    """A small re-implementation of ComfyUI's execution of an API-format graph.

    Runs the ancestors of every OUTPUT_NODE in dependency order, feeding each link
    ``[node_id, index]`` with that node's output tuple at `index` (`run_node` enters
    ``torch.inference_mode()`` like ComfyUI).
    """
    validate_api_prompt(prompt)
    deps = {nid: {v[0] for v in n["inputs"].values() if isinstance(v, list)} for nid, n in prompt.items()}
    wanted, stack = set(), [nid for nid, n in prompt.items() if getattr(NODES[n["class_type"]], "OUTPUT_NODE", False)]
    while stack:
        nid = stack.pop()
        if nid not in wanted:
            wanted.add(nid)
            stack.extend(deps[nid])
    indegree = {nid: len(deps[nid]) for nid in wanted}
    ready = deque(sorted(nid for nid, d in indegree.items() if d == 0))
    outputs, uis = {}, {}
    while ready:
        nid = ready.popleft()
        node = prompt[nid]
        kwargs = {k: (outputs[v[0]][v[1]] if isinstance(v, list) else v) for k, v in node["inputs"].items()}
        outputs[nid], ui = run_node(node["class_type"], **kwargs)
        if ui:
            uis[nid] = ui
        for other in sorted(wanted):
            if nid in deps[other]:
                indegree[other] -= 1
                if indegree[other] == 0:
                    ready.append(other)
    assert set(outputs) == wanted, "graph has a cycle"
    return outputs, uis


def ui_to_api(workflow: dict) -> dict:
    """Convert a UI-format workflow to API format (what ComfyUI's front end does on Queue)."""
    links = {link[0]: link for link in workflow["links"]}
    api = {}
    for node in workflow["nodes"]:
        cls = NODES[node["type"]]
        inputs = {}
        names = widget_names(cls)
        assert len(names) == len(node["widgets_values"]), f"node {node['id']}: {len(node['widgets_values'])} widget values for {names}"
        for name, value in zip(names, node["widgets_values"]):
            if name is not None:
                inputs[name] = value
        for slot in node["inputs"]:
            if slot.get("link") is not None:
                link_id, origin, origin_slot, target, target_slot, link_type = links[slot["link"]]
                assert target == node["id"] and node["inputs"][target_slot] is slot
                assert link_type == slot["type"] == NODES[_ui_node(workflow, origin)["type"]].RETURN_TYPES[origin_slot]
                inputs[slot["name"]] = [str(origin), origin_slot]
        api[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return api


def _ui_node(workflow: dict, node_id: int) -> dict:
    return next(n for n in workflow["nodes"] if n["id"] == node_id)


def make_ball_frames(num_frames: int = 9, size: int = 48) -> np.ndarray:
    """Two coloured discs moving over a grey floor: uint8 ``[F,H,W,3]``."""
    rows, cols = np.mgrid[0:size, 0:size]
    frames = np.full((num_frames, size, size, 3), 110, np.uint8)
    frames[:, size // 2 :] = 150  # a floor, for texture
    for t in range(num_frames):
        for (x0, y0, vx, vy, r, colour) in ((8, 10, 2.5, 1.5, 6, (220, 40, 40)), (38, 30, -2.0, -0.5, 5, (40, 80, 220))):
            disc = (cols - (x0 + vx * t)) ** 2 + (rows - (y0 + vy * t)) ** 2 <= r * r
            frames[t][disc] = colour
    return frames


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def output_dir(tmp_path, monkeypatch):
    out = tmp_path / "comfy_output"
    monkeypatch.setenv("MMPHYS_COMFY_OUTPUT_DIR", str(out))
    return out


@pytest.fixture(scope="module")
def ball_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "balls.mp4"
    write_video(path, make_ball_frames(), fps=8.0)
    return path


@pytest.fixture(scope="module")
def student():
    (handle,), _ = run_node("MMPhysLoadPipeline", source=TINY, model="student", dtype="auto", device="auto")
    return handle


@pytest.fixture(scope="module")
def teacher():
    (handle,), _ = run_node("MMPhysLoadPipeline", source=TINY, model="teacher", dtype="auto", device="auto")
    return handle


def generate_student(handle, prompt="a ball falls", seed=0, **overrides):
    kw = dict(prompt=prompt, negative_prompt="", guidance_scale=3.0, seed=seed, **TINY_VIDEO)
    kw.update(overrides)
    (frames,), _ = run_node("MMPhysStudentTextToVideo", pipeline=handle, **kw)
    return frames


# ----------------------------------------------------------------------------- contract


def test_mappings_follow_the_v1_node_contract():
    assert set(NODES) == set(DISPLAY_NAMES)
    for name, cls in NODES.items():
        assert isinstance(inspect.getattr_static(cls, "INPUT_TYPES"), classmethod), name
        spec = cls.INPUT_TYPES()
        assert set(spec) <= {"required", "optional", "hidden"} and "required" in spec, name
        for group in ("required", "optional"):
            for input_name, input_spec in spec.get(group, {}).items():
                assert isinstance(input_spec, tuple) and 1 <= len(input_spec) <= 2, (name, input_name)
                kind = input_spec[0]
                assert isinstance(kind, str) or (isinstance(kind, list) and kind and all(isinstance(k, str) for k in kind)), (name, input_name)
                opts = input_spec[1] if len(input_spec) == 2 else {}
                assert isinstance(opts, dict)
                if "default" in opts and is_widget(input_spec):
                    check_widget_value(name, input_name, input_spec, opts["default"])
        assert isinstance(cls.RETURN_TYPES, tuple) and all(isinstance(t, str) for t in cls.RETURN_TYPES), name
        if hasattr(cls, "RETURN_NAMES"):
            assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES), name
        assert callable(getattr(cls, cls.FUNCTION, None)), name
        assert isinstance(cls.CATEGORY, str) and cls.CATEGORY.startswith("MMPhysVideo"), name
        assert isinstance(cls.DESCRIPTION, str) and cls.DESCRIPTION, name  # shown as the node tooltip
        # ComfyUI calls FUNCTION with keyword arguments named after the inputs.
        signature = inspect.signature(getattr(cls(), cls.FUNCTION))
        required = spec["required"]
        signature.bind(**{k: None for k in required})
        signature.bind(**{k: None for k in {**required, **spec.get("optional", {})}})
    assert [n for n, c in NODES.items() if getattr(c, "OUTPUT_NODE", False)] == ["MMPhysSaveVideo"]


def test_every_custom_input_type_is_produced_by_some_node():
    produced = {t for cls in NODES.values() for t in cls.RETURN_TYPES}
    for name, cls in NODES.items():
        for input_name, spec in input_specs(cls).items():
            if not is_widget(spec) and spec[0] not in ("IMAGE", "MASK"):
                assert spec[0] in produced, f"{name}.{input_name}: nothing produces {spec[0]}"


def test_pack_imports_without_comfyui():
    from comfy_nodes import comfy_compat

    assert "comfy" not in sys.modules and "folder_paths" not in sys.modules
    assert not comfy_compat.comfy_available()
    assert comfy_compat.get_torch_device() == torch.device("cpu")
    comfy_compat.throw_if_interrupted()  # a no-op without ComfyUI


# ----------------------------------------------------------------------------- video nodes


def test_save_video_writes_mp4_with_ui_dict_and_increments(output_dir):
    frames = torch.from_numpy(make_ball_frames(6, 32).astype(np.float32) / 255.0)
    (path,), ui = run_node("MMPhysSaveVideo", images=frames, filename_prefix="mmphys/clip", fps=8.0, crf=18)
    assert Path(path) == output_dir / "mmphys" / "clip_00001_.mp4"
    assert ui == {"images": [{"filename": "clip_00001_.mp4", "subfolder": "mmphys", "type": "output"}], "animated": (True,)}
    decoded, fps = read_video(path)
    assert decoded.shape == (6, 32, 32, 3) and fps == pytest.approx(8.0)
    assert np.abs(decoded.astype(float) - make_ball_frames(6, 32)).mean() < 8.0  # H.264 4:2:0 blurs the small discs
    (path2,), _ = run_node("MMPhysSaveVideo", images=frames, filename_prefix="mmphys/clip", fps=8.0, crf=18)
    assert Path(path2).name == "clip_00002_.mp4"


@pytest.mark.parametrize(
    "images, prefix, match",
    [
        (torch.rand(32, 32), "ok", "shaped"),
        (torch.rand(2, 3, 32, 32), "ok", "shaped"),
        (torch.full((2, 8, 8, 3), float("nan")), "ok", "NaN"),
        (torch.zeros(2, 8, 8, 3, dtype=torch.uint8), "ok", "floats"),
        (torch.rand(2, 8, 8, 3), "../escape", "output folder"),
        (torch.rand(2, 8, 8, 3), "  ", "empty"),
    ],
)
def test_save_video_rejects_bad_input(images, prefix, match):
    with pytest.raises(MMPhysInputError, match=match):
        run_node("MMPhysSaveVideo", images=images, filename_prefix=prefix, fps=8.0, crf=18)


def test_load_video_reads_frames_and_reports_missing_files(ball_video, tmp_path):
    (images, fps, count), _ = run_node("MMPhysLoadVideo", video_path=str(ball_video), max_frames=0)
    assert images.shape == (9, 48, 48, 3) and count == 9 and fps == pytest.approx(8.0)
    (images, _, count), _ = run_node("MMPhysLoadVideo", video_path=str(ball_video), max_frames=4)
    assert images.shape[0] == count == 4
    assert NODES["MMPhysLoadVideo"].IS_CHANGED(str(ball_video), 0) == NODES["MMPhysLoadVideo"].IS_CHANGED(str(ball_video), 0)
    with pytest.raises(MMPhysInputError, match="not found"):
        run_node("MMPhysLoadVideo", video_path=str(tmp_path / "missing.mp4"), max_frames=0)
    bad = tmp_path / "text.mp4"
    bad.write_text("not a video")
    with pytest.raises(MMPhysInputError, match="cannot"):
        run_node("MMPhysLoadVideo", video_path=str(bad), max_frames=0)


# ----------------------------------------------------------------------------- perception nodes


@pytest.fixture(scope="module")
def ball_images() -> torch.Tensor:
    return torch.from_numpy(make_ball_frames().astype(np.float32) / 255.0)


EXTRACT_DEFAULTS = dict(localizer="motion", segmenter="box_propagate", depth_backend="ground_plane", tracker="farneback", fov_degrees=60.0, backend_options="{}")


@pytest.mark.parametrize("cue", ["semantics", "depth", "xyz", "tracks", "flow", "unified"])
def test_extract_then_decode_every_cue(cue, ball_images):
    from mmphys_diffusers.perception import get_codec

    (pseudo, payload), _ = run_node("MMPhysExtractPseudoRGB", images=ball_images, cue=cue, **EXTRACT_DEFAULTS)
    assert pseudo.shape == ball_images.shape
    assert payload.cue == cue and set(payload.arrays) == set(get_codec(cue).required_arrays)
    np.testing.assert_allclose(pseudo.numpy(), payload.video.transpose(0, 2, 3, 1))
    (vis, inst_mask, depth_img, depth_mask), _ = run_node("MMPhysDecodePerception", cue="auto", instance_id=0, perception=payload)
    assert vis.shape[0] == 9 and inst_mask.shape == depth_mask.shape == (9, 48, 48) and depth_img.shape == (9, 48, 48, 3)
    if "instances" in payload.arrays:
        ids = payload.arrays["instances"]
        assert ids.max() >= 2, "the two moving discs should be found"
        assert torch.equal(inst_mask, torch.from_numpy((ids > 0).astype(np.float32)))
        (_, one, _, _), _ = run_node("MMPhysDecodePerception", cue="auto", instance_id=1, perception=payload)
        assert torch.equal(one, torch.from_numpy((ids == 1).astype(np.float32)))
    if cue in ("depth", "xyz", "unified"):
        assert float(depth_mask.max()) == pytest.approx(1.0) and float(depth_mask.min()) == pytest.approx(0.0)
        assert torch.equal(depth_img[..., 0], depth_mask)
    else:
        assert float(depth_mask.abs().max()) == 0.0


def test_decode_pseudo_rgb_image_with_codec_defaults():
    from mmphys_diffusers.perception import get_codec

    ids = np.zeros((4, 16, 16), np.int64)
    ids[:, 2:8, 2:8], ids[:, 9:14, 9:15] = 1, 2
    video, _ = get_codec("semantics").encode(instances=ids)
    image = torch.from_numpy(np.ascontiguousarray(video.transpose(0, 2, 3, 1)))
    (vis, mask, _, _), _ = run_node("MMPhysDecodePerception", cue="semantics", instance_id=2, pseudo_rgb=image)
    assert torch.equal(mask, torch.from_numpy((ids == 2).astype(np.float32)))
    assert vis.shape == (4, 16, 16, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cue="auto"), "connect either"),
        (dict(cue="auto", pseudo_rgb=torch.rand(2, 8, 8, 3)), "needs the perception input"),
        (dict(cue="depth", perception=PerceptionPayload("semantics", np.zeros((2, 3, 8, 8), np.float32))), "set cue to 'auto'"),
        (dict(cue="depth", pseudo_rgb=torch.rand(8, 8, 3, 2)), "shaped"),
        (dict(cue="auto", perception="not a payload"), "must come from"),
    ],
)
def test_decode_rejects_bad_input(kwargs, match):
    with pytest.raises(MMPhysInputError, match=match):
        run_node("MMPhysDecodePerception", instance_id=0, **kwargs)


@pytest.mark.parametrize(
    "images, overrides, match",
    [
        (torch.rand(1, 16, 16, 3), {}, "at least 2 frames"),
        (torch.rand(4, 16, 16), {}, "shaped"),
        (torch.rand(4, 16, 16, 3), {"backend_options": "{not json"}, "not valid JSON"),
        (torch.rand(4, 16, 16, 3), {"backend_options": '{"nope": {}}'}, "must be a JSON object"),
        (torch.rand(4, 16, 16, 3), {"depth_backend": "no_such_backend", "cue": "depth"}, "unknown depth backend"),
    ],
)
def test_extract_rejects_bad_input(images, overrides, match):
    kwargs = {**EXTRACT_DEFAULTS, "cue": "flow", **overrides}
    with pytest.raises(MMPhysInputError, match=match):
        run_node("MMPhysExtractPseudoRGB", images=images, **kwargs)


# ----------------------------------------------------------------------------- pipeline nodes


@pytest.mark.parametrize(
    "source, match",
    [
        ("bundled", "bundled student model not found"),
        ("/nonexistent/model/folder", "model folder not found"),
        ("tiny-random:tiny-nope", "unknown tiny config"),
        ("", "source is empty"),
    ],
)
def test_load_pipeline_errors_are_clear(source, match, tmp_path, monkeypatch):
    monkeypatch.setenv("MMPHYS_BUNDLED_MODELS", str(tmp_path))  # an empty bundle folder: absent model
    with pytest.raises(MMPhysInputError, match=match):
        run_node("MMPhysLoadPipeline", source=source, model="student", dtype="auto", device="auto")


def test_device_and_dtype_choices():
    from comfy_nodes.nodes_pipeline import resolve_device, resolve_dtype

    assert resolve_device("auto") == torch.device("cpu")  # no ComfyUI: the CPU
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("float16", torch.device("cpu")) == torch.float16
    with pytest.raises(MMPhysInputError, match="unknown dtype"):
        resolve_dtype("float64", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(MMPhysInputError, match="no CUDA GPU"):
            run_node("MMPhysLoadPipeline", source=TINY, model="student", dtype="auto", device="cuda")


def test_load_pipeline_rejects_a_folder_that_is_not_a_pipeline(tmp_path):
    with pytest.raises(MMPhysInputError, match="model_index.json is missing"):
        run_node("MMPhysLoadPipeline", source=str(tmp_path), model="student", dtype="auto", device="auto")


def test_student_text_to_video(student):
    assert student.model == "student" and student.device == torch.device("cpu") and student.dtype == torch.float32
    frames = generate_student(student, seed=7)
    assert frames.shape == (5, 32, 32, 3)
    assert torch.equal(frames, generate_student(student, seed=7)), "the seed must make the output deterministic"
    assert not torch.equal(frames, generate_student(student, seed=8))


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"num_frames": 0}, "num_frames must be >= 1"),
        ({"guidance_scale": float("nan")}, "guidance_scale"),
        ({"num_frames": 4}, "k\\*4\\+1 frames"),
        ({"height": 30}, "multiple of 16"),
    ],
)
def test_student_rejects_bad_input(student, overrides, match):
    with pytest.raises(MMPhysInputError, match=match):
        generate_student(student, **overrides)


def test_student_node_refuses_a_teacher_pipeline(teacher):
    with pytest.raises(MMPhysInputError, match="needs a student pipeline"):
        generate_student(teacher)


def test_progress_and_interrupt_go_through_comfyui(student, monkeypatch):
    """With ComfyUI's modules present, steps drive comfy.utils.ProgressBar and Cancel stops the loop.

    The two modules below follow ComfyUI's own (comfy/utils.py ProgressBar.update_absolute;
    comfy/model_management.py throw_exception_if_processing_interrupted, which raises
    InterruptProcessingException once and clears the flag); ComfyUI itself is not on PyPI.
    """
    seen, flag = [], {"interrupt": False}

    class ProgressBar:
        def __init__(self, total):
            self.total, self.current = total, 0

        def update_absolute(self, value, total=None, preview=None):
            self.total = total or self.total
            self.current = min(value, self.total)
            seen.append((self.current, self.total))
            if self.current == 1 and flag.get("cancel_after_first_step"):
                flag["interrupt"] = True  # the user presses Cancel during step 1

    class InterruptProcessingException(Exception):
        pass

    def throw_exception_if_processing_interrupted():
        if flag["interrupt"]:
            flag["interrupt"] = False
            raise InterruptProcessingException()

    comfy = types.ModuleType("comfy")
    utils = types.ModuleType("comfy.utils")
    utils.ProgressBar = ProgressBar
    mm = types.ModuleType("comfy.model_management")
    mm.InterruptProcessingException = InterruptProcessingException
    mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    mm.get_torch_device = lambda: torch.device("cpu")
    comfy.utils, comfy.model_management = utils, mm
    for name, module in (("comfy", comfy), ("comfy.utils", utils), ("comfy.model_management", mm)):
        monkeypatch.setitem(sys.modules, name, module)

    from comfy_nodes import comfy_compat

    assert comfy_compat.comfy_available() and comfy_compat.interrupt_exception_class() is InterruptProcessingException
    generate_student(student, steps=3)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    seen.clear()
    flag["cancel_after_first_step"] = True
    with pytest.raises(InterruptProcessingException):
        generate_student(student, steps=3)
    assert seen == [(1, 3)], "denoising must stop at the step where Cancel was seen"


# ----------------------------------------------------------------------------- LoRA


@pytest.fixture(scope="module")
def lora_files(tmp_path_factory):
    from diffusers import CogVideoXPipeline, WanPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from mmphys_diffusers.backbones import tiny_components

    root = tmp_path_factory.mktemp("loras")
    paths = {}
    for name, pipeline_cls, backbone in (("wan", WanPipeline, "tiny-wan"), ("cogvideox", CogVideoXPipeline, "tiny-cogvideox")):
        transformer = tiny_components(backbone, seed=1)["transformer"]
        transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False))
        pipeline_cls.save_lora_weights(root / name, transformer_lora_layers=get_peft_model_state_dict(transformer))
        paths[name] = root / name / "pytorch_lora_weights.safetensors"
    garbage = root / "garbage.safetensors"
    garbage.write_bytes(b"\x00not safetensors")
    paths["garbage"] = garbage
    return paths


@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")
def test_lora_changes_output_without_touching_other_branches(student, lora_files):
    base = generate_student(student)
    (with_lora,), _ = run_node("MMPhysLoadLoRA", pipeline=student, lora_path=str(lora_files["wan"]), strength=1.0)
    assert student.loras == () and len(with_lora.loras) == 1
    changed = generate_student(with_lora)
    assert (changed - base).abs().max() > 1e-3
    assert torch.equal(generate_student(student), base), "the LoRA-free branch must still generate the base output"
    (zero,), _ = run_node("MMPhysLoadLoRA", pipeline=student, lora_path=str(lora_files["wan"]), strength=0.0)
    assert torch.allclose(generate_student(zero), base, atol=1e-6)
    assert zero.loras[0][0] == with_lora.loras[0][0], "the same file is loaded once, under one adapter name"
    assert torch.allclose(generate_student(with_lora), changed, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")
@pytest.mark.parametrize("which, match", [("cogvideox", "does not fit"), ("garbage", "does not fit"), ("missing", "LoRA not found"), ("empty", "lora_path is empty")])
def test_incompatible_lora_is_a_clear_error(student, lora_files, which, match):
    special = {"missing": "/nonexistent/lora.safetensors", "empty": ""}
    path = special[which] if which in special else str(lora_files[which])
    with pytest.raises(MMPhysInputError, match=match):
        run_node("MMPhysLoadLoRA", pipeline=student, lora_path=path, strength=1.0)
    assert torch.isfinite(generate_student(student)).all(), "the pipeline must still work after a failed LoRA"


# ----------------------------------------------------------------------------- teacher


TEACHER_KW = dict(prompt="a ball falls", negative_prompt="", perception_cue="unified", guidance_scale=3.0, seed=0, perception_guidance_scale=3.0, **TINY_VIDEO)


def test_teacher_joint_generation(teacher):
    (rgb, perception_rgb, payload), _ = run_node("MMPhysTeacherGenerate", pipeline=teacher, mode="joint", **TEACHER_KW)
    assert rgb.shape == perception_rgb.shape == (5, 32, 32, 3)
    assert payload.cue == "unified" and payload.video.shape == (5, 3, 32, 32)
    np.testing.assert_allclose(perception_rgb.numpy(), payload.video.transpose(0, 2, 3, 1))
    (vis, mask, depth, _), _ = run_node("MMPhysDecodePerception", cue="auto", instance_id=0, perception=payload)
    assert mask.shape == (5, 32, 32) and depth.shape == (5, 32, 32, 3)


@pytest.mark.parametrize("mode", ["perception_to_rgb", "rgb_to_perception"])
def test_teacher_conditioned_modes(teacher, ball_images, mode):
    # The 48 px, 9-frame condition is cut to 5 frames and resized to 32 px.
    (rgb, perception_rgb, payload), _ = run_node("MMPhysTeacherGenerate", pipeline=teacher, mode=mode, condition_images=ball_images, **TEACHER_KW)
    assert rgb.shape == perception_rgb.shape == (5, 32, 32, 3) and payload.cue == "unified"


@pytest.mark.parametrize(
    "mode, condition, overrides, match",
    [
        ("rgb_to_perception", None, {}, "needs condition_images"),
        ("joint", torch.rand(5, 32, 32, 3), {}, "takes no condition_images"),
        ("perception_to_rgb", torch.rand(3, 32, 32, 3), {}, "holds 3 frames but num_frames is 5"),
        ("perception_to_rgb", torch.rand(5, 32, 32), {}, "shaped"),
        ("joint", None, {"prompt": ""}, "prompt is empty"),
    ],
)
def test_teacher_rejects_bad_input(teacher, mode, condition, overrides, match):
    kwargs = {**TEACHER_KW, **overrides}
    if condition is not None:
        kwargs["condition_images"] = condition
    with pytest.raises(MMPhysInputError, match=match):
        run_node("MMPhysTeacherGenerate", pipeline=teacher, mode=mode, **kwargs)


# ----------------------------------------------------------------------------- workflows


def api_workflows() -> list[Path]:
    return sorted(WORKFLOW_DIR.glob("*_api.json"))


def test_every_workflow_has_both_formats():
    paths = api_workflows()
    assert len(paths) >= 3
    for api_path in paths:
        assert api_path.with_name(api_path.name.replace("_api.json", ".json")).is_file()


@pytest.mark.parametrize("api_path", api_workflows(), ids=lambda p: p.stem)
def test_workflow_wiring_and_ui_consistency(api_path):
    api = json.loads(api_path.read_text())
    validate_api_prompt(api)
    ui = json.loads(api_path.with_name(api_path.name.replace("_api.json", ".json")).read_text())
    assert {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api.items()} == ui_to_api(ui)
    for node in ui["nodes"]:
        for slot, out in enumerate(node["outputs"]):
            assert out["type"] == NODES[node["type"]].RETURN_TYPES[slot]
            for link_id in out["links"]:
                assert next(link for link in ui["links"] if link[0] == link_id)[1:3] == [node["id"], slot]
    assert ui["last_link_id"] == max((link[0] for link in ui["links"]), default=0)
    sources = [n["inputs"]["source"] for n in api.values() if n["class_type"] == "MMPhysLoadPipeline"]
    assert all(s == "bundled" for s in sources), "example workflows use the bundled model"


@pytest.mark.parametrize("api_path", api_workflows(), ids=lambda p: p.stem)
def test_workflow_executes_on_tiny_models(api_path, ball_video, output_dir):
    api = json.loads(api_path.read_text())
    for node in api.values():
        inputs = node["inputs"]
        if "source" in inputs:
            inputs["source"] = TINY
        for key, value in TINY_VIDEO.items():
            if key in inputs:
                inputs[key] = value
        if "video_path" in inputs:
            inputs["video_path"] = str(ball_video)
    outputs, uis = execute_api_prompt(api)
    saved = [output_dir / item["subfolder"] / item["filename"] for ui in uis.values() for item in ui["images"]]
    assert saved and len(saved) == sum(n["class_type"] == "MMPhysSaveVideo" for n in api.values())
    for path in saved:
        frames, _ = read_video(path)
        assert frames.shape[0] in (5, 9)


@pytest.mark.parametrize("api_path", api_workflows(), ids=lambda p: p.stem)
def test_workflow_executes_unmodified_on_the_bundled_models(api_path, tmp_path, output_dir):
    """The example workflows as shipped (source "bundled"), on a simulated 17-frame input video."""
    from mmphys_diffusers.assets import bundled_models_dir
    from mmphys_diffusers.simulation import simulate_clip

    if not all((bundled_models_dir() / kind / "model_index.json").is_file() for kind in ("student", "teacher")):
        pytest.skip("this install carries no bundled MMPhysVideo-Tiny weights")
    video = write_video(tmp_path / "input.mp4", simulate_clip("free_fall", seed=7, num_frames=17, size=64).rgb)
    api = json.loads(api_path.read_text())
    for node in api.values():
        if "video_path" in node["inputs"]:
            node["inputs"]["video_path"] = str(video)
    _, uis = execute_api_prompt(api)
    saved = [output_dir / item["subfolder"] / item["filename"] for ui in uis.values() for item in ui["images"]]
    assert saved and len(saved) == sum(n["class_type"] == "MMPhysSaveVideo" for n in api.values())
    for path in saved:
        frames, _ = read_video(path)
        assert frames.shape[0] == 17 and frames.shape[1] == 64


# ----------------------------------------------------------------------------- installation


def test_pack_loads_the_way_comfyui_loads_custom_nodes(tmp_path):
    """ComfyUI imports ``custom_nodes/<name>/__init__.py`` under the folder's name (nodes.load_custom_node)."""
    import importlib.util

    pack = tmp_path / "custom_nodes" / "mmphys"
    pack.parent.mkdir()
    pack.symlink_to(ROOT / "comfy_nodes", target_is_directory=True)
    module_name = "mmphys_custom_nodes_probe"
    spec = importlib.util.spec_from_file_location(module_name, pack / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        assert set(module.NODE_CLASS_MAPPINGS) == set(NODES)
        assert set(module.NODE_DISPLAY_NAME_MAPPINGS) == set(DISPLAY_NAMES)
        cls = module.NODE_CLASS_MAPPINGS["MMPhysSaveVideo"]
        assert cls.__module__ == f"{module_name}.nodes_video"
    finally:
        for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
            del sys.modules[name]


def test_comfyui_folders_are_used_when_folder_paths_is_present(tmp_path, monkeypatch, ball_video):
    """Bare model names resolve under ComfyUI/models/<folder>, relative videos under the input folder,
    and saved videos go to the output folder (folder_paths' API: get_folder_paths, get_input_directory,
    get_output_directory)."""
    models, inputs, outputs = tmp_path / "models", tmp_path / "input", tmp_path / "output"
    for d in (models / "diffusers", models / "loras", inputs, outputs):
        d.mkdir(parents=True)
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.get_folder_paths = lambda name: [str(models / name)]
    folder_paths.get_input_directory = lambda: str(inputs)
    folder_paths.get_output_directory = lambda: str(outputs)
    monkeypatch.setitem(sys.modules, "folder_paths", folder_paths)

    # A fresh pipeline: the shared `student` fixture carries LoRA layers from other tests.
    (fresh,), _ = run_node("MMPhysLoadPipeline", source=TINY, model="student", dtype="float32", device="cpu")
    fresh.pipeline.save_pretrained(models / "diffusers" / "my-student")
    (loaded,), _ = run_node("MMPhysLoadPipeline", source="my-student", model="student", dtype="float32", device="cpu")
    assert torch.allclose(generate_student(loaded), generate_student(fresh), atol=1e-5), "a saved folder must reload the same weights"

    (inputs / "balls.mp4").write_bytes(ball_video.read_bytes())
    (images, _, _), _ = run_node("MMPhysLoadVideo", video_path="balls.mp4", max_frames=0)
    (path,), ui = run_node("MMPhysSaveVideo", images=images, filename_prefix="mmphys/copy", fps=8.0, crf=18)
    assert Path(path) == outputs / "mmphys" / "copy_00001_.mp4" and ui["images"][0]["subfolder"] == "mmphys"
