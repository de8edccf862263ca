"""The vision workflow end to end on a tiny DINOv2 saved from a config: `tada train --images` (LoRA +
head in modules_to_save), `tada merge` carrying the task head, `tada eval --images` choosing head
or linear probe, and `tada bench` on a vision config (Table 4 layout, dry run)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file
from transformers import Dinov2Config, Dinov2Model

from tada.cli import main
from tada.errors import TadaError
from tada.vision.evaluate import choose_head, evaluate_images, load_evaluated
from tada.vision.images import ImageSet, image_folder, preprocess
from tada.vision.train import read_labels, train_image_lora

CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=16,
              image_size=224)
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2")


def run_cli(args: list[str]) -> int:
    """``tada ARGS``: its exit code (0 when main returns)."""
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def write_folder(root: Path, classes: dict[str, int], n: int, seed: int, modes=("RGB",)) -> Path:
    """An ImageFolder of noise images whose mean brightness is the class's value; images cycle
    through ``modes`` (grayscale "L" and "RGBA" are converted by the pre-processing)."""
    rng = np.random.default_rng(seed)
    for name, level in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = np.clip(rng.normal(level, 20, (20, 20, 3)), 0, 255).astype(np.uint8)
            img = Image.fromarray(pixels)
            mode = modes[i % len(modes)]
            img = img.convert(mode) if mode != "RGB" else img
            img.save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny base, a task set (dark/light), a domain set (red/blue), two trained adapters."""
    root = tmp_path_factory.mktemp("vision")
    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(**CONFIG)).save_pretrained(root / "base")
    task_set = write_folder(root / "task", {"dark": 40, "light": 210}, 8, 0, modes=("RGB", "L", "RGBA"))
    domain_set = write_folder(root / "domain", {"blue": 90, "red": 160, "white": 250}, 6, 1)
    kw = dict(steps=4, batch_size=4, target_modules=TARGETS, progress=False)
    task = train_image_lora(str(root / "base"), str(task_set), root / "ad_task", **kw)
    train_image_lora(str(root / "base"), str(domain_set), root / "ad_domain", seed=1, **kw)
    return {"root": root, "base": str(root / "base"), "task_set": str(task_set), "domain_set": str(domain_set),
            "task": str(root / "ad_task"), "domain": str(root / "ad_domain"), "summary": task}


def test_train_writes_a_peft_adapter_with_its_head_and_labels(world, tmp_path):
    ad = Path(world["task"])
    config = json.loads((ad / "adapter_config.json").read_text())
    assert config["modules_to_save"] == ["classifier"] and config["r"] == 16
    tensors = load_file(ad / "adapter_model.safetensors")
    assert tensors["base_model.model.classifier.weight"].shape == (2, 64)  # CLS ⊕ mean patch → 2 classes
    assert any(k.endswith("mlp.fc2.lora_A.weight") for k in tensors)
    assert read_labels(ad) == ["dark", "light"]
    assert world["summary"]["steps"] == 4 and np.isfinite(world["summary"]["final_loss"])
    # seeded: a second run gives identical weights
    again = train_image_lora(world["base"], world["task_set"], tmp_path / "again", steps=4, batch_size=4,
                             target_modules=TARGETS, progress=False, base_name="org/tiny-vit")
    card = (tmp_path / "again" / "README.md").read_text()  # PEFT's model card: the name, not the folder
    assert "base_model: org/tiny-vit" in card and world["base"] not in card
    assert again["final_loss"] == world["summary"]["final_loss"]
    other = load_file(tmp_path / "again" / "adapter_model.safetensors")
    assert all(torch.equal(tensors[k], other[k]) for k in tensors)


def test_train_errors_are_one_line(world, tmp_path):
    one = write_folder(tmp_path / "one", {"only": 100}, 3, 0)
    with pytest.raises(TadaError, match="two classes"):
        train_image_lora(world["base"], str(one), tmp_path / "x", steps=1, progress=False)
    with pytest.raises(TadaError, match="no class subfolders|not found"):
        train_image_lora(world["base"], str(tmp_path / "nowhere"), tmp_path / "x", steps=1, progress=False)
    (tmp_path / "bad" / "a").mkdir(parents=True)
    (tmp_path / "bad" / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(TadaError, match="unreadable image file .*broken.png"):
        image_folder(tmp_path / "bad")


def test_merge_carries_the_task_head_and_loads_in_peft(world, tmp_path):
    """probe → merge → PeftModel.from_pretrained: logits equal the base with W + merged ΔW and the
    task adapter's head."""
    from peft import PeftModel

    from tada.vision.train import load_classifier

    stats = {}
    for which, source in (("domain", world["domain_set"]), ("general", world["task_set"])):
        stats[which] = tmp_path / f"{which}.safetensors"
        code = run_cli(["probe", "--images", "--base", world["base"], "--probe", source, "--adapter", world["task"],
                  "--n", "4", "--out", str(stats[which])])
        assert code == 0
    out = tmp_path / "merged"
    code = run_cli(["merge", "--task", world["task"], "--domain", world["domain"], "--domain-stats", str(stats["domain"]),
              "--general-stats", str(stats["general"]), "--out", str(out), "--quiet"])
    assert code == 0
    assert read_labels(out) == ["dark", "light"]
    merged = load_file(out / "adapter_model.safetensors")
    task = load_file(Path(world["task"]) / "adapter_model.safetensors")
    for key in ("base_model.model.classifier.weight", "base_model.model.classifier.bias"):
        assert torch.equal(merged[key], task[key])

    pixels = preprocess(image_folder(world["task_set"]).pil_images()[:3])
    peft_model = PeftModel.from_pretrained(load_classifier(world["base"], ["dark", "light"]), str(out)).eval()
    manual = load_classifier(world["base"], ["dark", "light"])
    config = json.loads((out / "adapter_config.json").read_text())
    with torch.no_grad():
        for name, module in manual.named_modules():
            key = f"base_model.model.{name}.lora_A.weight"
            if key in merged:
                B = merged[key.replace("lora_A", "lora_B")]
                scale = config["lora_alpha"] / config["r"]
                module.weight += scale * (B.double() @ merged[key].double()).float()
        manual.classifier.weight.copy_(task["base_model.model.classifier.weight"])
        manual.classifier.bias.copy_(task["base_model.model.classifier.bias"])
        torch.testing.assert_close(peft_model(pixel_values=pixels).logits, manual(pixel_values=pixels).logits,
                                   rtol=1e-4, atol=1e-5)


def test_eval_picks_the_head_or_the_linear_probe(world, tmp_path):
    head = evaluate_images(world["base"], world["task_set"], adapter=world["task"], n=8)
    assert head.head == "modules_to_save" and head.meta["head_from"] == world["task"] and head.n == 8
    probe = evaluate_images(world["base"], world["domain_set"], adapter=world["task"], n=6,
                            train_source=world["domain_set"])
    assert probe.head == "linear_probe" and probe.meta["train_set"] == world["domain_set"]
    assert probe.meta["probe_train_images"] == 18
    # the base with the task adapter's head put on top equals the task row's backbone swap
    model = load_evaluated(world["base"], world["domain"], head_from=world["task"])
    assert model.classifier.out_features == 2
    with pytest.raises(TadaError, match="label set mismatch"):
        evaluate_images(world["base"], world["domain_set"], adapter=world["task"], head="adapter", n=4)
    with pytest.raises(TadaError, match="needs train images"):
        evaluate_images(world["base"], world["domain_set"], adapter=world["task"], n=4)
    with pytest.raises(TadaError, match="no labels.json"):
        choose_head(None, ImageSet([], [], ["a"], "x"), "adapter")

    out = tmp_path / "r.json"
    code = run_cli(["eval", "--images", "--base", world["base"], "--adapter", world["task"], "--dataset",
              world["task_set"], "--limit", "6", "--out", str(out)])
    assert code == 0
    record = json.loads(out.read_text())
    assert record["head"] == "modules_to_save" and record["n"] == 6 and len(record["predictions"]) == 6


def test_cli_bad_input_is_one_line(world, tmp_path, capsys):
    empty = tmp_path / "empty" / "a"
    empty.mkdir(parents=True)
    cases = [(["eval", "--images", "--base", world["base"], "--adapter", world["task"], "--dataset",
               world["domain_set"], "--head", "adapter"], "label set mismatch"),
             (["eval", "--images", "--base", world["base"], "--dataset", str(tmp_path / "empty")], "has no image files"),
             (["train", "--images", "--base", world["base"], "--data", str(tmp_path / "missing"), "--out",
               str(tmp_path / "o")], "image source not found")]
    for args, message in cases:
        assert run_cli(args) == 2
        err = capsys.readouterr().err.strip()
        errors = [line for line in err.splitlines() if not line.startswith("warning: ")]
        assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], err


def bench_config(world, tmp_path: Path, **extra) -> Path:
    cfg = {"name": "tiny-vision", "modality": "vision", "base": world["base"], "task": world["task"],
           "domain": world["domain"], "domain_probe": world["domain_set"], "general_probe": world["task_set"],
           "datasets": [world["task_set"], world["domain_set"]],
           "train_sets": {world["domain_set"]: world["domain_set"]},
           "columns": {world["task_set"]: "Task", world["domain_set"]: "Domain"},
           "methods": ["linear", "tada"], "limit": 6, "probe_n": 4, "out": str(tmp_path / "run"),
           "report": str(tmp_path / "results.md"), **extra}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_vision_bench_table4_and_resume(world, tmp_path, capsys):
    path = bench_config(world, tmp_path)
    code = run_cli(["bench", "--config", str(path), "--quiet"])
    assert code == 0
    table = (tmp_path / "run" / "table.md").read_text()
    assert table.splitlines()[0] == "| Method | Task | Domain | Ave. |"
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:7]] == [
        "Base model", "Task only", "Domain only", "Linear", "TaDA (ours)"]
    assert "Task: task adapter's head, n=6; Domain: linear probe, n=6" in table
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert len(results["records"]) == 10 and results["recipes"][world["domain_set"]] == "linear_probe"
    report = (tmp_path / "results.md").read_text()
    assert "GENERATED" in report and "| TaDA (ours) vs | Task | Domain |" in report
    assert "| Linear | " in report.split("TaDA (ours) vs")[1]  # one paired row per other row
    merged = tmp_path / "run" / "adapters" / "tada"
    assert read_labels(merged) == ["dark", "light"]
    # resume: every cell is cached, nothing is recomputed
    cell = tmp_path / "run" / "results" / "tada"
    before = {p: p.stat().st_mtime_ns for p in cell.iterdir()}
    assert run_cli(["bench", "--config", str(path), "--quiet"]) == 0
    assert {p: p.stat().st_mtime_ns for p in cell.iterdir()} == before
    # a changed merge input (the linear weights) re-merges that row and recomputes its cells only
    linear = tmp_path / "run" / "adapters" / "linear" / "adapter_model.safetensors"
    old_linear = linear.read_bytes()
    linear_cells = tmp_path / "run" / "results" / "linear"
    linear_before = {p: p.stat().st_mtime_ns for p in linear_cells.iterdir()}
    path = bench_config(world, tmp_path, method_params={"linear": {"weights": [0.3, 0.7]}})
    assert run_cli(["bench", "--config", str(path), "--quiet"]) == 0
    assert linear.read_bytes() != old_linear
    assert {p: p.stat().st_mtime_ns for p in cell.iterdir()} == before  # TaDA untouched
    assert all(p.stat().st_mtime_ns != t for p, t in linear_before.items())  # linear recomputed
    stamp = json.loads((tmp_path / "run" / "adapters" / "linear.key.json").read_text())
    assert stamp["params"] == {"weights": [0.3, 0.7]} and stamp["task"].startswith("sha256:")


def test_vision_ablation_table7(world, tmp_path):
    """`tada analyze ablation` on a vision config: every TaDA variant, top-1 on every set."""
    path = bench_config(world, tmp_path, limit=4)
    assert run_cli(["analyze", "ablation", "--config", str(path), "--out", str(tmp_path / "abl"), "--quiet",
                    "--model-dtype", "float64"]) == 0
    assert json.loads((tmp_path / "abl" / "ablation.config.json").read_text())["bench"]["model_dtype"] == "float64"
    rows = json.loads((tmp_path / "abl" / "ablation.json").read_text())["rows"]
    assert [r["variant"] for r in rows][:3] == ["full TaDA", "layer-level α", "fixed α = 0.5"] and len(rows) == 11
    assert all(r["scoring"] == "top1" and 0 <= r["average"] <= 1 for r in rows)
    table = (tmp_path / "abl" / "ablation.md").read_text()
    assert "| variant | Task | Domain | Ave. |" in table and (tmp_path / "abl" / "ablation.top1.png").is_file()
    fixed = tmp_path / "abl" / "runs" / "adapters" / "variant-fixed-0-7.key.json"
    key_params = json.loads(fixed.read_text())["params"]  # every parameter, defaults included
    assert key_params["fixed_alpha"] == 0.7 and key_params["delta"] == "auto" and not key_params["layer_alpha"]


def test_vision_bench_dry_run(world, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = run_cli(["bench", "--config", str(bench_config(world, tmp_path)), "--dry-run"])
    assert code == 0
    assert "everything reachable" in capsys.readouterr().out
    code = run_cli(["bench", "--config", str(bench_config(world, tmp_path, domain=str(tmp_path / "gone"))), "--dry-run"])
    assert code == 2
    assert "domain adapter" in capsys.readouterr().out
    # the paper's preset: Table 4's rows and six columns; offline, the hub sets are reported
    code = run_cli(["bench", "--preset", "vit-l16", "--dry-run"])
    assert code == 2
    out = capsys.readouterr().out
    assert "| Method | P-MNIST | D-MNIST | EuroSAT | ImageNet | CIFAR | DTD | Ave. |" in out
    assert "| TaDA (ours) | – | – | – | – | – | – | – |" in out
    assert "task adapter: not given" in out and "cifar100 (uoft-cs/cifar100)" in out
