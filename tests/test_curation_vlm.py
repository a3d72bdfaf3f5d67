"""VLM localisers over a real OpenAI-compatible HTTP server on loopback (valid, malformed, timeout, 5xx)."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from mmphys_diffusers.curation import CurationConfig, CurationWorker
from mmphys_diffusers.curation.classical import mask_box
from mmphys_diffusers.curation.evaluate import instance_iou
from mmphys_diffusers.curation.ingest import Source
from mmphys_diffusers.curation.localize import LocalizerTimeout
from mmphys_diffusers.curation.localize.openai_http import OpenAICompatibleLocalizer
from mmphys_diffusers.curation.pipeline import ClipRejected
from mmphys_diffusers.curation.synthetic import make_disc_clip
from mmphys_diffusers.errors import MMPhysInputError
from mmphys_diffusers.utils.video_io import write_video

CLIP = make_disc_clip(16, 64, 64, seed=0)


def perfect_answer(frame_indices: list[int], scale: float = 1.0) -> dict:
    """What an ideal VLM would say about CLIP: ground-truth boxes on the frames it was shown."""
    subjects = []
    for k, name in ((1, "red ball"), (2, "blue ball")):
        ev = []
        for t in frame_indices:
            box = mask_box(CLIP["instances"][t] == k)
            if box is not None:
                ev.append({"frame": t, "box": [v * scale for v in box], "observation": f"{name} visible"})
        subjects.append({"id": k, "name": name, "evidence": ev})
    return {
        "caption": "A red ball falls onto a rolling blue ball.",
        "phenomenon": {"label": "colliding", "evidence": [{"frame": 7, "subject_ids": [1, 2], "observation": "the balls touch"}]},
        "subjects": subjects,
    }


class FakeVLMServer:
    """Speaks /v1/chat/completions. `mode` picks the behaviour of the next answers."""

    def __init__(self):
        self.mode = "valid"
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                mode = server.mode
                if mode == "timeout":
                    time.sleep(1.5)
                    return self._send(200, _completion("{}"))
                if mode == "error500":
                    return self._send(500, {"error": "overloaded"})
                if mode == "malformed":
                    return self._send(200, _completion("The video shows a red ball. It falls."))
                shown = [int(m) for m in re.findall(r"Frame (\d+):", json.dumps(body["messages"][1]["content"]))]
                scale = 1000.0 / 64 if mode == "valid_1000" else 1.0
                return self._send(200, _completion("```json\n" + json.dumps(perfect_answer(shown, scale)) + "\n```"))

            def _send(self, code, payload):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout case)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _completion(content: str) -> dict:
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


@pytest.fixture()
def server():
    with FakeVLMServer() as s:
        yield s


def test_valid_answer_is_parsed_validated_and_request_is_openai_format(server):
    loc = OpenAICompatibleLocalizer(base_url=server.url + "/v1", model="qwen-vl", api_key="sk-test", num_frames=4, timeout=5)
    out = loc.localize(CLIP["frames"])
    assert [s["name"] for s in out["subjects"]] == ["red ball", "blue ball"]
    assert out["phenomenon"]["label"] == "colliding"
    req = server.requests[-1]
    assert req["model"] == "qwen-vl" and req["messages"][0]["role"] == "system"
    images = [c for c in req["messages"][1]["content"] if c["type"] == "image_url"]
    assert len(images) == 4 and all(c["image_url"]["url"].startswith("data:image/jpeg;base64,") for c in images)
    assert "chain-of-visual-evidence" in req["messages"][1]["content"][-1]["text"]
    assert server.headers[-1]["Authorization"] == "Bearer sk-test"


def test_normalised_boxes_are_rescaled(server):
    server.mode = "valid_1000"
    loc = OpenAICompatibleLocalizer(base_url=server.url, model="m", num_frames=4, box_format="normalized_1000", timeout=5)
    out = loc.localize(CLIP["frames"])
    ev = out["subjects"][0]["evidence"][0]
    gt = mask_box(CLIP["instances"][ev["frame"]] == 1)
    assert np.allclose(ev["box"], gt, atol=1e-3)


def test_malformed_answer_is_retried_then_falls_back(server):
    server.mode = "malformed"
    loc = OpenAICompatibleLocalizer(base_url=server.url, model="m", num_frames=2, timeout=5)
    with pytest.raises(MMPhysInputError, match="not JSON"):
        loc.localize(CLIP["frames"])
    cfg = CurationConfig.from_dict({"localize": {"backend": "openai", "options": {"base_url": server.url, "model": "m", "num_frames": 2}, "retries": 2, "fallback": "motion"}})
    worker = CurationWorker(cfg, "unused")
    before = len(server.requests)
    answer, info = worker.localize(CLIP["frames"])
    assert len(server.requests) - before == 3  # first attempt + 2 retries
    assert info["backend"] == "motion" and len(info["fallback_after"]) == 3 and "not JSON" in info["fallback_after"][0]
    assert len(answer["subjects"]) == 2  # the motion localiser's answer


def test_timeout_is_reported_and_rejects_without_fallback(server):
    server.mode = "timeout"
    loc = OpenAICompatibleLocalizer(base_url=server.url, model="m", num_frames=2, timeout=0.3)
    t0 = time.perf_counter()
    with pytest.raises(LocalizerTimeout, match="did not answer within 0.3 s"):
        loc.localize(CLIP["frames"])
    assert time.perf_counter() - t0 < 1.4  # gave up at the timeout, not when the server answered
    cfg = CurationConfig.from_dict({"localize": {"backend": "openai", "options": {"base_url": server.url, "model": "m", "timeout": 0.3, "num_frames": 2}, "retries": 0, "fallback": None}})
    with pytest.raises(ClipRejected, match="LocalizerTimeout"):
        CurationWorker(cfg, "unused").localize(CLIP["frames"])


def test_server_errors_are_transient_and_unreachable_server_is_reported(server):
    server.mode = "error500"
    loc = OpenAICompatibleLocalizer(base_url=server.url, model="m", num_frames=2, timeout=5)
    with pytest.raises(ConnectionError, match="HTTP 500"):
        loc.localize(CLIP["frames"])
    dead = OpenAICompatibleLocalizer(base_url="http://127.0.0.1:9", model="m", num_frames=2, timeout=2)
    with pytest.raises(ConnectionError, match="cannot reach"):
        dead.localize(CLIP["frames"])


def test_vlm_evidence_drives_segmentation_in_the_pipeline(server, tmp_path):
    """Sparse VLM boxes (4 frames) are propagated by the segmenter to every frame and the clip is written."""
    video = tmp_path / "in" / "clip.mp4"
    write_video(video, CLIP["frames"], fps=8, crf=10)
    cfg = CurationConfig.from_dict({"localize": {"backend": "openai", "options": {"base_url": server.url, "model": "m", "num_frames": 4}, "fallback": None}})
    worker = CurationWorker(cfg, tmp_path / "out")
    result = worker.process(Source("clip", str(video)))
    assert result["status"] == "done", result
    (clip,) = result["clips"]
    assert clip["status"] == "accepted", clip
    record = clip["record"]
    assert record["caption"] == "A red ball falls onto a rolling blue ball."
    assert record["meta"]["localizer"] == {"backend": "openai", "attempts": 1}
    cues = np.load(tmp_path / "out" / record["cues"])
    assert instance_iou(cues["instances"], CLIP["instances"])["mean_iou"] > 0.7
