"""A tensor spool: merged tensors go to disk as they are made, and become a ``.safetensors`` file
without ever being all in memory (the engine's output side of streaming, issue "Performance").

``TensorSpool`` is a read/write mapping name → tensor backed by an anonymous temporary file:
``spool[name] = t`` appends t's bytes, ``spool[name]`` reads them back (a fresh tensor), and
``save(path)`` writes the safetensors layout (8-byte little-endian header length, JSON header,
then the data) by copying each tensor's bytes in a bounded buffer. The file is byte-identical to
``safetensors.torch.save_file`` of the same tensors (same order: larger dtypes first, then by
name; header padded with spaces to a multiple of 8), which the tests check.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass

import torch

#: safetensors dtype names (the ones a LoRA adapter can hold).
DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}
#: save_file's order among equal-size dtypes (its Rust enum order, descending).
_RANK = {"BOOL": 0, "U8": 1, "I8": 2, "I16": 3, "F16": 4, "BF16": 5, "I32": 6, "F32": 7, "F64": 8, "I64": 9}
COPY_BYTES = 16 << 20


@dataclass(frozen=True)
class _Entry:
    dtype: torch.dtype
    shape: tuple[int, ...]
    offset: int
    nbytes: int


class TensorSpool(MutableMapping):
    """name → tensor, stored in an anonymous temporary file (deleted when the spool is closed or
    garbage-collected). Memory: one tensor at a time."""

    def __init__(self, folder: str | os.PathLike | None = None):
        # unbuffered: read back with pread
        self._file = tempfile.TemporaryFile(dir=None if folder is None else os.fspath(folder), buffering=0)
        self._index: dict[str, _Entry] = {}
        self._end = 0

    # ---- mapping ------------------------------------------------------------------------------
    def __setitem__(self, name: str, tensor: torch.Tensor) -> None:
        if tensor.dtype not in DTYPES:
            raise TypeError(f"cannot spool a {tensor.dtype} tensor")
        t = tensor.detach().to("cpu").contiguous()
        data = t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b""
        self._file.seek(self._end)
        self._file.write(memoryview(data))  # type: ignore[arg-type]  # ndarray: buffer protocol
        self._index[name] = _Entry(t.dtype, tuple(t.shape), self._end, t.numel() * t.element_size())
        self._end += self._index[name].nbytes

    def __getitem__(self, name: str) -> torch.Tensor:
        e = self._index[name]
        if not e.nbytes:
            return torch.empty(e.shape, dtype=e.dtype)
        raw = bytearray(os.pread(self._file.fileno(), e.nbytes, e.offset))
        return torch.frombuffer(raw, dtype=torch.uint8).view(e.dtype).reshape(e.shape)

    def __delitem__(self, name: str) -> None:
        del self._index[name]  # the bytes stay in the file until it is closed

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        self._file.close()

    # ---- output -------------------------------------------------------------------------------
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._index.values())

    def order(self) -> list[str]:
        """save_file's tensor order: larger element size first, then dtype, then name."""
        def key(name: str):
            e = self._index[name]
            return (-torch.empty(0, dtype=e.dtype).element_size(), -_RANK[DTYPES[e.dtype]], name)

        return sorted(self._index, key=key)

    def header(self, metadata: dict[str, str] | None = None) -> bytes:
        """The safetensors header (JSON, space-padded to a multiple of 8 bytes)."""
        head: dict = {"__metadata__": dict(metadata)} if metadata else {}
        offset = 0
        for name in self.order():
            e = self._index[name]
            head[name] = {"dtype": DTYPES[e.dtype], "shape": list(e.shape), "data_offsets": [offset, offset + e.nbytes]}
            offset += e.nbytes
        text = json.dumps(head, separators=(",", ":"), ensure_ascii=False).encode()
        return text + b" " * (-len(text) % 8)

    def save(self, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
        """Write the spooled tensors as one ``.safetensors`` file (a bounded copy buffer)."""
        head = self.header(metadata)
        src = self._file.fileno()
        with open(path, "wb") as out:
            out.write(struct.pack("<Q", len(head)))
            out.write(head)
            for name in self.order():
                e = self._index[name]
                done = 0
                while done < e.nbytes:
                    chunk = os.pread(src, min(COPY_BYTES, e.nbytes - done), e.offset + done)
                    if not chunk:
                        raise OSError(f"tensor spool truncated while writing {name}")
                    out.write(chunk)
                    done += len(chunk)
