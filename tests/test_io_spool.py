"""The tensor spool writes exactly what safetensors' save_file writes, one tensor at a time."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from tada.io.spool import TensorSpool

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(range(len(DTYPES))), st.lists(st.integers(0, 5), min_size=0, max_size=3)),
                min_size=1, max_size=6), st.booleans())
def test_spool_file_is_byte_identical_to_save_file(tmp_path_factory, specs, with_metadata):
    tmp = tmp_path_factory.mktemp("spool")
    g = torch.Generator().manual_seed(0)
    tensors = {f"t{i}.{'ab'[i % 2]}": (torch.randn(shape, generator=g, dtype=torch.float64) * 100).to(DTYPES[d])
               for i, (d, shape) in enumerate(specs)}
    spool = TensorSpool()
    for name, t in reversed(list(tensors.items())):  # any insertion order
        spool[name] = t
    meta = {"format": "pt"} if with_metadata else None
    spool.save(tmp / "ours.safetensors", metadata=meta)
    save_file(tensors, str(tmp / "theirs.safetensors"), metadata=meta)
    assert (tmp / "ours.safetensors").read_bytes() == (tmp / "theirs.safetensors").read_bytes()
    back = load_file(str(tmp / "ours.safetensors"))
    for name, t in tensors.items():
        assert torch.equal(back[name], t) and torch.equal(spool[name], t)


def test_spool_is_a_mapping_and_copies_in_bounded_chunks(tmp_path, monkeypatch):
    import tada.io.spool as spool_mod

    monkeypatch.setattr(spool_mod, "COPY_BYTES", 7)  # many partial copies per tensor
    spool = TensorSpool()
    spool.update({"b": torch.arange(10.0), "a": torch.ones(3, 2, dtype=torch.bfloat16)})
    spool["b"] = torch.arange(5.0)  # replacing a name keeps only the new bytes in the file
    assert sorted(spool) == ["a", "b"] and len(spool) == 2
    spool.save(tmp_path / "x.safetensors")
    back = load_file(str(tmp_path / "x.safetensors"))
    assert torch.equal(back["b"], torch.arange(5.0)) and back["a"].dtype == torch.bfloat16
