"""Localiser over any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, Ollama, hosted APIs)."""

from __future__ import annotations

import base64
import json
import os
import socket
import urllib.error
import urllib.request

import cv2
import numpy as np

from ...errors import MMPhysInputError
from ..registry import LOCALIZERS
from .base import LocalizerTimeout
from .vlm import VLMLocalizer


def image_data_url(image: np.ndarray, quality: int = 90) -> str:
    """uint8 RGB ``[H,W,3]`` -> ``data:image/jpeg;base64,...``."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MMPhysInputError(f"cannot JPEG-encode a frame of shape {image.shape}")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


@LOCALIZERS.register("openai")
class OpenAICompatibleLocalizer(VLMLocalizer):
    """POSTs ``/v1/chat/completions`` with the frames as base64 data URLs.

    Args:
        base_url: server root or its ``/v1`` (e.g. "http://localhost:8000/v1" for vLLM,
            "http://localhost:11434/v1" for Ollama).
        model: model name the server knows.
        api_key: bearer token; defaults to the environment variable named by `api_key_env`.
        timeout: seconds per request; a timeout raises `LocalizerTimeout` (the pipeline retries).
        max_tokens, temperature: generation settings.
        json_mode: send ``response_format={"type": "json_object"}`` (servers that lack it ignore or reject it).
        num_frames, box_format: see `VLMLocalizer`.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_tokens: int = 2048,
        temperature: float = 0.0,
        json_mode: bool = False,
        num_frames: int = 8,
        box_format: str = "pixels",
    ):
        super().__init__(num_frames=num_frames, box_format=box_format)
        base = base_url.rstrip("/")
        self.url = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env)
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.json_mode = json_mode

    def build_request(self, images: list[np.ndarray], frame_indices: list[int], prompt: str) -> dict:
        content = []
        for idx, image in zip(frame_indices, images):
            content.append({"type": "text", "text": f"Frame {idx}:"})
            content.append({"type": "image_url", "image_url": {"url": image_data_url(image)}})
        content.append({"type": "text", "text": prompt})
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": content}],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    def generate(self, images: list[np.ndarray], frame_indices: list[int], prompt: str) -> str:
        body = json.dumps(self.build_request(images, frame_indices, prompt)).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                payload = json.loads(resp.read().decode("utf-8"))
        except (socket.timeout, TimeoutError) as exc:
            raise LocalizerTimeout(f"{self.url} did not answer within {self.timeout} s") from exc
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            if exc.code in (408, 429) or exc.code >= 500:  # transient: let the pipeline retry
                raise ConnectionError(f"{self.url} returned HTTP {exc.code}: {detail}") from exc
            raise MMPhysInputError(f"{self.url} rejected the request with HTTP {exc.code}: {detail}") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                raise LocalizerTimeout(f"{self.url} did not answer within {self.timeout} s") from exc
            raise ConnectionError(f"cannot reach {self.url}: {exc.reason}") from exc
        except json.JSONDecodeError as exc:
            raise MMPhysInputError(f"{self.url} answered with non-JSON HTTP body: {exc}") from exc
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise MMPhysInputError(f"{self.url} answer lacks choices[0].message.content: {str(payload)[:200]}") from exc
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise MMPhysInputError(f"{self.url} answer content is {type(content).__name__}, expected text")
        return content
