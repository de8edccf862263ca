"""Fig. 2 plot: a PNG of the expected size whose plotted values are the report's α."""
from __future__ import annotations

import json
import math

import pytest

import tada
from tada.report.alpha import alpha_grid
from tada.analysis.plots import plot_alpha, read_report
from tada.errors import TadaError

from conftest import random_stats
from conftest import run_cli  # noqa: E402


@pytest.fixture
def report_dir(tmp_path, pair):
    task, domain = pair
    out = tmp_path / "merged"
    tada.merge(task, domain, method="tada", domain_stats=random_stats(seed=1), general_stats=random_stats(seed=2),
               out=out, progress=False)
    return out


def test_plot_alpha_values_and_file(tmp_path, report_dir):
    from PIL import Image

    report = read_report(report_dir)
    fig = plot_alpha([report, report], tmp_path / "fig" / "alpha.png", ["left", "right"])
    grid = alpha_grid(report)
    data = fig.axes[0].images[0].get_array()
    assert data.shape == (len(grid["roles"]), len(grid["layers"]))
    for i, role in enumerate(grid["roles"]):
        for j, a in enumerate(grid["alpha"][role]):
            assert (math.isnan(float(data[i, j])) and a is None) or float(data[i, j]) == pytest.approx(a)
    entry = report["modules"]["model.layers.0.self_attn.v_proj"]
    assert grid["alpha"]["value"][0] == entry["alpha"]
    png = tmp_path / "fig" / "alpha.png"
    width, height = Image.open(png).size
    assert width > 1000 and 300 < height < 800 and (tmp_path / "fig" / "alpha.svg").stat().st_size > 1000


def test_plot_alpha_bad_input(tmp_path, pair):
    task, domain = pair
    out = tmp_path / "lin"
    tada.merge(task, domain, method="linear", out=out, progress=False)
    with pytest.raises(TadaError, match="has no per-layer"):
        read_report(out)
    (tmp_path / "bad.json").write_text(json.dumps({"report_version": 99, "method": "tada"}))
    with pytest.raises(TadaError, match="not a tada report"):
        read_report(tmp_path / "bad.json")
    with pytest.raises(TadaError, match="no TaDA report"):
        read_report(tmp_path / "missing")


@pytest.fixture
def merged(tmp_path, pair):
    task, domain = pair
    out = tmp_path / "merged"
    tada.merge(task, domain, method="tada", params={"delta": 0.1}, domain_stats=random_stats(seed=1),
               general_stats=random_stats(seed=2), out=out, progress=False)
    return out


def test_plot_alpha_cli_writes_png_and_svg(capsys, tmp_path, merged):
    from PIL import Image

    png = tmp_path / "fig" / "a.png"
    png.parent.mkdir()
    code, out, err = run_cli(capsys, "plot-alpha", merged, "--out", png, "--title", "tiny")
    assert code == 0, err
    assert f"wrote {png} and {png.with_suffix('.svg')}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(png).convert("RGB")
    w1, h1 = img.size
    assert w1 > 500 and 200 < h1 < 1000
    colours = set(img.getdata())
    assert len(colours) > 50  # a drawn heatmap, axes and text, not an empty canvas
    svg = png.with_suffix(".svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and svg.rstrip().endswith("</svg>")
    assert "<image" in svg  # the heatmap raster
    # two reports: two panels side by side
    two = tmp_path / "two.png"
    code, _, err = run_cli(capsys, "plot-alpha", merged, merged / "tada_report.json", "--out", two)
    assert code == 0, err
    w2, h2 = Image.open(two).size
    assert w2 > 1.5 * w1 and h2 == h1


def test_plot_alpha_cli_refuses_bad_arguments(capsys, tmp_path, merged, pair):
    code, _, err = run_cli(capsys, "plot-alpha", merged, merged, merged, "--out", tmp_path / "x.png")
    assert code == 2 and "one or two reports" in err
    code, _, err = run_cli(capsys, "plot-alpha", merged, "--title", "a", "--title", "b", "--out", tmp_path / "x.png")
    assert code == 2 and "one --title per report" in err
    task, domain = pair
    tada.merge(task, domain, method="linear", out=tmp_path / "lin", progress=False)
    code, _, err = run_cli(capsys, "plot-alpha", tmp_path / "lin", "--out", tmp_path / "x.png")
    assert code == 2 and "has no per-layer" in err
    assert not (tmp_path / "x.png").exists()
