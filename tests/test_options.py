"""The options model (tada.options): one declaration per option gives the API keyword, the YAML key
and the CLI flag; a method's parameters become flags of `tada merge` without any other edit."""
from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tada
from tada.cli import cli
from tada.cli.merge import METHOD_OPTIONS
from tada.cli.options import as_flags, flag_map
from tada.errors import TadaError
from tada.methods import REGISTRY, bench_methods, row_label
from tada.options import MERGE_YAML_KEYS, MergeOptions, options_of

from conftest import random_stats, run_cli, write_adapter


def merge_flags() -> set[str]:
    return {opt for p in cli.commands["merge"].params for opt in p.opts}


def test_every_method_parameter_is_a_merge_flag_with_help():
    flags = merge_flags()
    for name, spec in REGISTRY.items():
        for o in options_of(spec.params):
            assert o.flag in flags, (name, o.name)
            assert o.help, f"{name}.{o.name} has no help text"


def test_a_shared_parameter_name_means_the_same_option_everywhere():
    seen: dict[str, tuple] = {}
    for spec in REGISTRY.values():
        for o in options_of(spec.params):
            assert seen.setdefault(o.name, (o.kind, o.flag, o.choices)) == (o.kind, o.flag, o.choices), o.name
    assert not set(seen) & {f.name for f in dataclasses.fields(MergeOptions)}, "a method flag shadows a merge option"


#: Written out by hand (not generated from the options model): what `tada merge` documents. A
#: field that disappears, is renamed or loses its flag, YAML key or keyword fails here.
MERGE_OPTIONS_BY_HAND = {
    "base": "--base", "gguf_file": "--gguf-file", "revision": "--revision", "task_revision": "--task-revision",
    "domain_revision": "--domain-revision", "domain_probe": "--domain-probe", "general_probe": "--general-probe",
    "domain_stats": "--domain-stats", "general_stats": "--general-stats", "out": "--out", "rank": "--rank",
    "max_rank": "--max-rank", "dtype": "--dtype", "device": "--device", "model_dtype": "--model-dtype",
    "probe_n": "--probe-n", "probe_seed": "--probe-seed", "max_length": "--max-length", "probe_site": "--probe-site",
    "batch_size": "--batch-size", "allow_partial": "--allow-partial", "allow_pickle": "--allow-pickle",
    "force": "--force", "push_to_hub": "--push-to-hub", "private": "--private", "hub_revision": "--hub-revision",
}
API_ONLY_BY_HAND = {"use_cache", "progress"}
METHOD_FLAGS_BY_HAND = {"--weights", "--scale", "--density", "--svd-solver", "--seed", "--precision", "--dare-rescale",
                        "--beta", "--delta", "--delta-drop", "--overlap-lambda", "--filter-side", "--tau",
                        "--global-tau", "--fixed-alpha", "--no-filter", "--keep-high-overlap", "--random-filter",
                        "--layer-alpha", "--domain-combine"}


def test_merge_options_are_the_documented_flags_yaml_keys_and_keywords():
    signature = inspect.signature(tada.merge).parameters
    flags = merge_flags()
    for name, flag in MERGE_OPTIONS_BY_HAND.items():
        assert flag in flags, flag
        assert name in MERGE_YAML_KEYS, name
        assert name in signature and signature[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    for name in API_ONLY_BY_HAND:
        assert name in signature and name not in MERGE_YAML_KEYS
    assert {"task", "domain", "method", "params", "config"} <= set(signature)
    assert METHOD_FLAGS_BY_HAND <= flags
    # nothing undocumented: every generated merge flag is one of the lists above
    extra = {"--config", "--task", "--domain", "--method", "--no-cache", "--param", "--summary", "--json", "--quiet", "--gguf",
             "--help"}
    assert flags - set(MERGE_OPTIONS_BY_HAND.values()) - METHOD_FLAGS_BY_HAND - extra <= {
        o.flag for spec in REGISTRY.values() for o in options_of(spec.params)}


def test_api_refuses_an_unknown_option_naming_the_closest(tmp_path):
    task, domain = write_adapter(tmp_path / "t", seed=1), write_adapter(tmp_path / "d", seed=2)
    with pytest.raises(TadaError, match=r"no option 'domain_prob'.*did you mean domain_probe"):
        tada.merge(task, domain, method="linear", domain_prob="x")


def test_library_errors_name_fields_and_the_cli_shows_flags(tmp_path, capsys):
    task, domain = write_adapter(tmp_path / "t", seed=1), write_adapter(tmp_path / "d", seed=2)
    with pytest.raises(TadaError, match="`domain_probe`"):
        tada.merge(task, domain, method="tada", general_stats=random_stats())
    code, _, err = run_cli(capsys, "merge", "--task", task, "--domain", domain, "--out", tmp_path / "m",
                           "--general-stats", _stats_file(tmp_path))
    assert code == 2 and "--domain-probe" in err and "`" not in err, err
    assert as_flags("pass `force`; `rescale` `nonsense`", flag_map(cli)) == "pass --force; --dare-rescale `nonsense`"


def _stats_file(tmp_path: Path) -> Path:
    path = tmp_path / "g.stats.safetensors"
    random_stats().save(path)
    return path


def test_registry_owns_the_table_labels_and_grid_axes():
    assert bench_methods() == ("linear", "task_arithmetic", "ties", "dare_linear", "dare_ties", "magnitude_prune",
                               "svd", "knots", "core_space", "tsv", "iso_c", "iso_cts", "tada")
    assert row_label("tada") == "TaDA (ours)" and row_label("base") == "Base model" and row_label("x-1") == "x-1"
    assert REGISTRY["dare_ties"].sweeps == ("density", "seed") and REGISTRY["ties"].sweeps == ("density",)
    assert all(spec.label and spec.reference for spec in REGISTRY.values())


PLUGIN = textwrap.dedent('''
    import json, sys
    from dataclasses import dataclass
    from tada.methods import ModuleInput, ModuleResult, register
    from tada.methods.linear import weighted_concat
    from tada.options import opt

    @dataclass(frozen=True)
    class ToyParams:
        gamma: float = opt(0.25, "The toy method's knob.", ge=0, le=1)
        combine: str = opt("sum", "How the toy combines.", choices=("sum", "mean"))

    @register("toy", ToyParams, label="Toy", reference="this test", row=30, sweeps=("gamma",))
    def toy(module: ModuleInput, params: ToyParams) -> ModuleResult:
        """gamma·(ΔW_T + ΔW_D)."""
        res = weighted_concat(module, (params.gamma,) * len(module.inputs))
        res.info["gamma"] = params.gamma
        return res

    from tada.cli import main
    main(sys.argv[1:])
''')


def test_a_new_method_parameter_is_one_edit(tmp_path):
    """A method registered with one parameter gets its `tada merge` flag, `tada methods` entry and
    YAML key with no other edit (docs/methods.md, "Adding a method")."""
    task, domain = write_adapter(tmp_path / "t", seed=1), write_adapter(tmp_path / "d", seed=2)
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)

    def tada_cmd(*args):
        return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                              timeout=300)

    assert "--gamma" in tada_cmd("merge", "--help").stdout
    assert "gamma=0.25" in tada_cmd("methods").stdout
    run = tada_cmd("merge", "--task", task, "--domain", domain, "--method", "toy", "--gamma", "0.7",
                   "--out", tmp_path / "m", "--quiet")
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "m" / "tada_report.json").read_text())
    assert report["params"]["gamma"] == 0.7
    (tmp_path / "m.yaml").write_text(f"task: {task}\ndomain: {domain}\nmethod: toy\nout: {tmp_path / 'y'}\n"
                                     "parameters: {{gamma: 0.5}}\n".replace("{{", "{").replace("}}", "}"))
    run = tada_cmd("merge", "--config", tmp_path / "m.yaml", "--quiet")
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "y" / "tada_report.json").read_text())["params"]["gamma"] == 0.5
    # its bounds and choices, declared in opt(), are checked with no code of its own: CLI and YAML
    for args, message in ((("--gamma", "1.5"), "gamma must be in [0, 1], got 1.5"),
                          (("--combine", "max"), "combine must be one of sum, mean, got 'max'")):
        run = tada_cmd("merge", "--task", task, "--domain", domain, "--method", "toy", *args, "--out", tmp_path / "n")
        errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
        assert run.returncode == 2 and len(errors) == 1 and message in errors[0], run.stderr
    (tmp_path / "b.yaml").write_text(f"task: {task}\ndomain: {domain}\nmethod: toy\nout: {tmp_path / 'z'}\n"
                                     "parameters: {gamma: -1}\n")
    run = tada_cmd("merge", "--config", tmp_path / "b.yaml")
    assert run.returncode == 2 and "gamma must be in [0, 1], got -1" in run.stderr
    assert "(in [0, 1])" in " ".join(tada_cmd("merge", "--help").stdout.split())


def test_bounds_and_choices_declared_in_opt_are_enforced_for_the_api(tmp_path, monkeypatch):
    from dataclasses import dataclass

    from tada.methods import MethodSpec
    from tada.methods.linear import weighted_concat
    from tada.options import opt

    @dataclass(frozen=True)
    class KnobParams:
        gamma: float = opt(0.25, "A knob.", gt=0, lt=1)
        combine: str = opt("sum", "How.", choices=("sum", "mean"))

    monkeypatch.setitem(REGISTRY, "knob", MethodSpec("knob", KnobParams, lambda m, p: weighted_concat(m, (p.gamma,) * 2),
                                                     False, True, "knob", label="Knob", reference="test"))
    task, domain = write_adapter(tmp_path / "t", seed=1), write_adapter(tmp_path / "d", seed=2)
    for params, message in (({"gamma": 1.0}, r"gamma must be in \(0, 1\), got 1.0"),
                            ({"gamma": True}, "gamma must be in"),
                            ({"combine": "mena"}, "combine must be one of sum, mean, got 'mena' \\(did you mean mean\\?\\)"),
                            ({"gama": 0.5}, "has no parameter 'gama' \\(did you mean gamma\\?\\)")):
        with pytest.raises(TadaError, match=message):
            tada.merge(task, domain, method="knob", params=params)
    assert tada.merge(task, domain, method="knob", params={"gamma": 0.5}).report["params"]["gamma"] == 0.5


def test_method_flags_are_generated_once_per_name():
    names = [o.name for o in METHOD_OPTIONS]
    assert len(names) == len(set(names)) and {"density", "delta", "weights", "rescale", "tau"} <= set(names)


def test_a_registered_method_joins_the_bench_grid(monkeypatch):
    from tada.bench.text import BenchConfig, grid
    from tada.methods import MethodSpec

    spec = REGISTRY["svd"]
    monkeypatch.setitem(REGISTRY, "toy", MethodSpec("toy", spec.params, spec.fn, False, False, "toy", label="Toy",
                                                    reference="test", sweeps=("density",), row=30))
    cfg = BenchConfig(name="n", base="b", task="t", domain="d", datasets=["x"], sweeps={"density": [0.3, 0.7], "seed": [0, 1, 2]})
    assert cfg.methods[-1] == "toy" and row_label("toy") == "Toy"
    assert [r.key for r in grid(cfg) if r.group == "toy"] == ["toy-d0.3", "toy-d0.7"]


def test_a_bench_sweep_axis_is_one_edit(monkeypatch):
    """A method that declares a new axis (here `gamma`) is swept over the values a config gives it,
    with no edit in the bench; the two first axes keep their run keys (``-d``/``-s``)."""
    from tada.bench.text import BenchConfig, grid
    from tada.methods import MethodSpec

    spec = REGISTRY["svd"]
    monkeypatch.setitem(REGISTRY, "toy", MethodSpec("toy", spec.params, spec.fn, False, False, "toy", label="Toy",
                                                    reference="test", sweeps=("gamma", "seed"), row=30))
    cfg = BenchConfig.from_dict({"name": "n", "base": "b", "task": "t", "domain": "d", "datasets": ["x"],
                                 "methods": ["dare_ties", "toy"], "sweeps": {"gamma": [0.2, 0.4], "seed": [0, 1]},
                                 "densities": [0.5]})
    keys = [r.key for r in grid(cfg) if r.method]
    assert keys == ["dare_ties-d0.5-s0", "dare_ties-d0.5-s1",
                    "toy-gamma0.2-s0", "toy-gamma0.2-s1", "toy-gamma0.4-s0", "toy-gamma0.4-s1"]
    assert dict(grid(cfg)[-1].params) == {"gamma": 0.4, "seed": 1}
    with pytest.raises(TadaError, match="sweeps must map a parameter"):
        BenchConfig.from_dict({"name": "n", "base": "b", "task": "t", "domain": "d", "datasets": ["x"],
                               "sweeps": {"gamma": 0.2}})


def test_every_command_option_comes_from_the_options_model():
    """eval, train, export-base, probe: every dataclass field with a flag is on its command, and
    the API keywords are the fields (one declaration)."""
    import click

    from tada.options import EvalOptions, ExportOptions, ImageEvalOptions, ImageTrainOptions, TrainOptions

    def flags(command: str) -> set[str]:
        params = cli.get_command(click.Context(cli), command).params
        return {opt for p in params for opt in [*p.opts, *getattr(p, "secondary_opts", [])]}

    for command, classes in (("eval", (EvalOptions, ImageEvalOptions)), ("train", (TrainOptions, ImageTrainOptions)),
                             ("export-base", (ExportOptions,))):
        have = flags(command)
        for cls in classes:
            for o in options_of(cls):
                assert not o.cli or o.flag.split("/")[0] in have, (command, o.flag)
    assert {"--scoring", "--no-prefix-cache", "--head", "--first", "--limit"} <= flags("eval")
    assert {"--mode", "--r", "--alpha", "--autocast", "--dropout"} <= flags("train")


def test_bench_overrides_and_probe_options_come_from_the_model():
    from tada.api import extract_probes
    from tada.bench.text import BenchConfig
    from tada.options import BenchOverrides, ProbeOptions
    from tada.bench.vision import VisionBenchConfig

    import click

    bench = cli.get_command(click.Context(cli), "bench")
    probe = cli.get_command(click.Context(cli), "probe")
    bench_flags = {opt for p in bench.params for opt in p.opts}
    probe_flags = {opt for p in probe.params for opt in p.opts}
    for o in options_of(BenchOverrides):  # each override is a key of both bench configurations
        assert o.flag in bench_flags
        assert o.name in {f.name for f in dataclasses.fields(BenchConfig)} & {f.name for f in
                                                                              dataclasses.fields(VisionBenchConfig)}
    signature = inspect.signature(extract_probes).parameters
    for o in options_of(ProbeOptions):
        assert signature[o.name].default == o.default
        assert not o.cli or o.flag in probe_flags


def test_unknown_names_suggest_the_closest(adapters, capsys):
    task, domain = adapters
    with pytest.raises(TadaError, match="unknown method 'tiess' \\(did you mean ties\\?\\)"):
        tada.merge(task, domain, method="tiess", progress=False)
    code, _, err = run_cli(capsys, "merge", "--task", task, "--domain", domain, "--dlta", "0.1", "--out", "x")
    assert code == 2 and "--dlta" in err and "'--delta'" in err
    code, _, err = run_cli(capsys, "bench", "--preset", "smollm2-ofline")
    assert code == 2 and "unknown preset" in err and "did you mean smollm2-offline" in err
