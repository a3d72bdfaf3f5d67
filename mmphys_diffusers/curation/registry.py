"""Name -> factory registries so every curation stage is pluggable from the config file.

Each stage (localiser, segmenter, depth estimator, tracker) has one `Registry`.
Backends register themselves with a decorator; the config names the backend and
passes its options as keyword arguments::

    @SEGMENTERS.register("box_propagate")
    class BoxPropagateSegmenter: ...

    SEGMENTERS.build("box_propagate", colour_threshold=30.0)
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, TypeVar

from ..errors import MMPhysInputError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of backend factories for one curation stage."""

    def __init__(self, stage: str):
        self.stage = stage
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: str) -> bool:
        return name in self._factories

    def build(self, name: str, **options: Any) -> T:
        """Instantiate backend `name`.

        A name of the form ``"package.module:Class"`` imports a third-party backend
        without registering it first.
        """
        if ":" in name and name not in self._factories:
            module_name, _, attr = name.partition(":")
            try:
                factory = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise MMPhysInputError(f"{self.stage} backend {name!r} cannot be imported: {exc}") from exc
        elif name in self._factories:
            factory = self._factories[name]
        else:
            raise MMPhysInputError(f"unknown {self.stage} backend {name!r}; expected one of {self.names()} or 'module:Class'")
        try:
            return factory(**options)
        except MMPhysInputError:
            raise
        except TypeError as exc:
            raise MMPhysInputError(f"{self.stage} backend {name!r}: bad options {sorted(options)}: {exc}") from exc
        except Exception as exc:  # a model that cannot load (missing files, no network) is a config error
            raise MMPhysInputError(f"{self.stage} backend {name!r} could not be built: {type(exc).__name__}: {exc}") from exc


LOCALIZERS: Registry[Any] = Registry("localize")
SEGMENTERS: Registry[Any] = Registry("segment")
DEPTH_ESTIMATORS: Registry[Any] = Registry("depth")
TRACKERS: Registry[Any] = Registry("tracks")
