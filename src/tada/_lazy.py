"""torch for the math layers, imported on first use.

The low-rank algebra and the method modules register the methods and declare their parameters at
import; only their functions touch torch. ``from tada._lazy import torch`` gives them a stand-in
that imports torch the first time one of its attributes is read, so ``tada methods`` (and
``tada merge --help``) list the registry without the second it takes to import torch
(docs/performance.md, "Start-up"). The stand-in is not put in ``sys.modules``: any other
``import torch`` in the process is the ordinary one, and after the first use every attribute is
the real module's.
"""
from __future__ import annotations

import importlib
import types
from typing import TYPE_CHECKING, Any


class LazyModule(types.ModuleType):
    """A module that imports ``name`` on first attribute access and caches each attribute it hands out."""

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self.__name__), attr)
        setattr(self, attr, value)  # the next read is a plain attribute lookup
        return value


if TYPE_CHECKING:
    import numpy as np
    import torch as torch
else:
    torch = LazyModule("torch")
    np = LazyModule("numpy")  # for modules whose constants a quick command reads (tada.vision.dinov2_onnx)


def lazy_attributes(package: str, where: dict[str, str]):
    """A module ``__getattr__`` for ``package`` that imports ``package.<where[name]>`` the first
    time ``name`` is read (PEP 562): ``tada.merge`` and ``tada.api.evaluate`` load their stack
    only when used."""

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
