"""Probe statistics: hook means equal module inputs computed by hand; special tokens excluded;
batching does not change the result; files, sampling and cache."""
from __future__ import annotations

import pytest
import torch

from tada.errors import TadaError
from tada.models import load_model, load_tokenizer, resolve_base
from tada.probes import ProbeStats, extract_stats, read_probe, stats_for_probe

from conftest import write_probe

MODULES = ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.o_proj", "model.layers.1.mlp.down_proj"]


@pytest.fixture(scope="module")
def model_tok(tiny_base):
    spec = resolve_base(str(tiny_base))
    return load_model(spec), load_tokenizer(spec)


def manual_means(model, tok, texts):
    """Module inputs by hand: q_proj = RMSNorm(h_0); o_proj input via a forward hook on attention
    output is what we check against a separate capture; down_proj = act(gate)*up."""
    sums = {m: 0.0 for m in MODULES}
    count = 0
    layers = model.model.layers
    for text in texts:  # one at a time, no padding
        enc = tok(text, return_tensors="pt")
        ids = enc["input_ids"]
        keep = ids[0] != tok.bos_token_id
        captured = {}
        h = layers[1].self_attn.o_proj.register_forward_hook(lambda m, a, o: captured.__setitem__("o", a[0]))  # noqa: B023
        with torch.no_grad():
            out = model(ids, output_hidden_states=True)
        h.remove()
        hs0 = out.hidden_states[0][0]
        q_in = layers[0].input_layernorm(hs0)
        hs1 = out.hidden_states[1][0]
        attn_out = captured["o"][0]
        mlp_in = layers[1].post_attention_layernorm(hs1 + layers[1].self_attn.o_proj(attn_out))
        mlp = layers[1].mlp
        down_in = mlp.act_fn(mlp.gate_proj(mlp_in)) * mlp.up_proj(mlp_in)
        for name, x in zip(MODULES, (q_in, attn_out, down_in)):
            sums[name] = sums[name] + x[keep].double().sum(0)
        count += int(keep.sum())
    return {m: s / count for m, s in sums.items()}


def test_hook_means_equal_manual_module_inputs(model_tok, tmp_path):
    model, tok = model_tok
    texts = read_probe(write_probe(tmp_path / "p.txt", n=6), n=32).items
    stats = extract_stats(model, tok, texts, MODULES, batch_size=4, progress=False)
    want = manual_means(model, tok, texts)
    for m in MODULES:
        torch.testing.assert_close(stats.means[m], want[m], rtol=1e-5, atol=1e-6)


def test_special_tokens_are_not_in_the_mean(model_tok, tmp_path):
    model, tok = model_tok
    texts = ["the cell", "gene protein heart"]
    stats = extract_stats(model, tok, texts, MODULES, progress=False)
    assert stats.meta["tokens"] == 5  # BOS and padding excluded


def test_batch_size_does_not_change_statistics(model_tok, tmp_path):
    model, tok = model_tok
    texts = read_probe(write_probe(tmp_path / "p.txt", n=16), n=32).items
    runs = [extract_stats(model, tok, texts, MODULES, batch_size=b, progress=False) for b in (1, 3, 8, 64)]
    for other in runs[1:]:
        for m in MODULES:
            assert torch.equal(runs[0].means[m], other.means[m])  # bit for bit (SPEC: determinism)
        assert runs[0].meta == other.meta
    paths = [tmp_path / f"s{i}.safetensors" for i in range(2)]
    for run, path in zip(runs[::3], paths):
        run.save(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_layer_hidden_site_uses_the_layer_input(model_tok):
    model, tok = model_tok
    texts = ["the cell gene", "river city king war"]
    stats = extract_stats(model, tok, texts, ["model.layers.1.self_attn.q_proj"], site="layer-hidden",
                          progress=False)
    total, n = 0.0, 0
    for t in texts:
        enc = tok(t, return_tensors="pt")
        with torch.no_grad():
            hs = model(**enc, output_hidden_states=True).hidden_states[1][0][1:]
        total, n = total + hs.double().sum(0), n + hs.shape[0]
    torch.testing.assert_close(stats.means["model.layers.1.self_attn.q_proj"], total / n, rtol=1e-5, atol=1e-6)


def test_only_special_tokens_is_an_error(model_tok):
    model, tok = model_tok
    with pytest.raises(TadaError, match="no content tokens"):
        extract_stats(model, tok, ["<s>", "<s> <s>"], MODULES, progress=False)


def test_probe_file_sampling_and_errors(tmp_path):
    many = tmp_path / "many.txt"
    many.write_text("\n".join(f"line {i}" for i in range(100)))
    a, b = read_probe(many, n=32, seed=42), read_probe(many, n=32, seed=42)
    assert a.items == b.items and len(a.items) == 32 and a.n_in_file == 100
    assert read_probe(many, n=32, seed=1).items != a.items
    few = tmp_path / "few.jsonl"
    few.write_text('{"text": "one"}\n\n{"text": "two"}\n')
    with pytest.warns(UserWarning, match="only 2 probe inputs"):
        assert read_probe(few, n=32).items == ["one", "two"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(TadaError, match="no inputs"):
        read_probe(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": 3}\n')
    with pytest.raises(TadaError, match=r"bad.jsonl:2"):
        read_probe(bad)
    with pytest.raises(TadaError, match="not found"):
        read_probe(tmp_path / "missing.txt")


def test_cache_skips_the_model_on_second_use(model_tok, tmp_path, monkeypatch):
    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "cache"))
    probe = read_probe(write_probe(tmp_path / "p.txt"), n=32)
    calls = []

    def loader():
        calls.append(1)
        return model_tok

    s1, hit1 = stats_for_probe(probe, MODULES, base_name="tiny", load_model=loader, n=32, progress=False)
    s2, hit2 = stats_for_probe(probe, MODULES, base_name="tiny", load_model=loader, n=32, progress=False)
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    for m in MODULES:
        assert torch.equal(s1.means[m], s2.means[m])


def test_stats_file_roundtrip(tmp_path):
    stats = ProbeStats({"a.q_proj": torch.arange(4, dtype=torch.float64)}, {"tokens": 4})
    loaded = ProbeStats.load(stats.save(tmp_path / "s.safetensors"))
    assert torch.equal(loaded.means["a.q_proj"], stats.means["a.q_proj"]) and loaded.meta == {"tokens": 4}
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(TadaError, match="not a probe statistics file"):
        ProbeStats.load(tmp_path / "junk.safetensors")


def test_max_tokens_budget(model_tok):
    model, tok = model_tok
    texts = ["the cell divides", "gene protein heart lung", "a third input never reached"]
    first = len(tok(texts[0])["input_ids"])
    cut = extract_stats(model, tok, texts, MODULES, max_tokens=first + 2, progress=False)
    # the budget takes input 1 whole and the first two tokens of input 2 (BOS + one word)
    second = tok.decode(tok(texts[1])["input_ids"][1:2])
    want = extract_stats(model, tok, [texts[0], second], MODULES, progress=False)
    assert cut.meta["inputs"] == 2 and cut.meta["max_tokens"] == first + 2
    assert cut.meta["tokens"] == want.meta["tokens"]
    for m in MODULES:
        torch.testing.assert_close(cut.means[m], want.means[m], rtol=1e-6, atol=1e-8)
    with pytest.raises(TadaError):
        extract_stats(model, tok, texts, MODULES, max_tokens=0, progress=False)


def test_cache_key_covers_every_input(model_tok, tmp_path, monkeypatch):
    """Base name, probe file content, N, seed, max length and site each give another cache entry
    (a recomputation equal to an uncached one); the same inputs, asked again, hit the cache."""
    from tada.probes import cache_dir

    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "cache"))
    path = write_probe(tmp_path / "p.txt", n=12, seed=0)
    other = write_probe(tmp_path / "q.txt", n=12, seed=1)
    calls = []

    def loader():
        calls.append(1)
        return model_tok

    base = dict(base="tiny", path=path, n=8, seed=42, max_length=256, site="module-input")
    variants = [base, {**base, "base": "tiny-2"}, {**base, "path": other}, {**base, "n": 6},
                {**base, "seed": 7}, {**base, "max_length": 4}, {**base, "site": "layer-hidden"}]

    def stats(v, use_cache=True):
        probe = read_probe(v["path"], n=v["n"], seed=v["seed"])
        return stats_for_probe(probe, MODULES, base_name=v["base"], load_model=loader, n=v["n"],
                               max_length=v["max_length"], site=v["site"], use_cache=use_cache, progress=False)

    results = []
    for i, v in enumerate(variants):
        before = len(calls)
        got, hit = stats(v)
        assert not hit and len(calls) == before + 1, v  # a miss: the model was loaded
        assert len(list(cache_dir().glob("*.safetensors"))) == i + 1  # a new entry
        fresh, _ = stats(v, use_cache=False)
        for m in MODULES:
            assert torch.equal(got.means[m], fresh.means[m]), (v, m)
        results.append(got)
    n_calls = len(calls)
    for v, first in zip(variants, results):
        again, hit = stats(v)
        assert hit, v
        for m in MODULES:
            assert torch.equal(again.means[m], first.means[m]), (v, m)
    assert len(calls) == n_calls  # every second ask came from the cache
    # the variants are really different inputs (else a shared entry would have been right)
    for v, res in zip(variants[2:], results[2:]):
        assert not torch.equal(res.means[MODULES[0]], results[0].means[MODULES[0]]), v
