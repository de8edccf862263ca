"""The six image benchmarks by hub id (tada.vision.hub_image_sets), against tiny local datasets: no network."""
from __future__ import annotations

from pathlib import Path

import pytest

Image = pytest.importorskip("PIL.Image")
datasets = pytest.importorskip("datasets")

from tada.errors import TadaError
from tada.vision import hub_image_sets as hub
from tada.vision.images import sample

CLASSES = ["apple", "bear", "cloud"]
LABELS = [2, 0, 1, 1, 0, 2, 2, 1]


def images(n: int = len(LABELS)) -> list[Image.Image]:
    """Row i is a (10 + i) × 6 image, so its size tells which row it came from."""
    return [Image.new("RGB", (10 + i, 6), (20 * i, 0, 0)) for i in range(n)]


def row_of(img: Image.Image) -> int:
    return img.size[0] - 10


def dataset(labels: list, label_feature, image_column: str = "img", label_column: str = "fine_label"):
    features = datasets.Features({image_column: datasets.Image(), label_column: label_feature})
    return datasets.Dataset.from_dict({image_column: images(len(labels)), label_column: labels},
                                      features=features)


@pytest.fixture
def cifar(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar100"
    dataset(LABELS, datasets.ClassLabel(names=CLASSES)).save_to_disk(str(folder))
    return folder


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def test_registry_holds_the_six_benchmarks():
    assert list(hub.HUB_IMAGE_SETS) == ["imagenet-1k", "cifar100", "pathmnist", "dermamnist", "eurosat", "dtd"]
    imagenet = hub.HUB_IMAGE_SETS["imagenet-1k"]
    assert (imagenet.hub_id, imagenet.test_split, imagenet.gated) == ("ILSVRC/imagenet-1k", "validation", True)
    cifar = hub.HUB_IMAGE_SETS["cifar100"]
    assert (cifar.image_column, cifar.label_column) == ("img", "fine_label")
    assert hub.HUB_IMAGE_SETS["dermamnist"].config == "dermamnist"


def test_load_from_saved_dataset(cifar: Path):
    got = hub.load_hub_image_set("cifar100", "test", path=cifar)
    assert got.name == "cifar100:test"
    assert got.classes == CLASSES
    assert got.labels == LABELS
    assert isinstance(got.images, hub.HubImages) and len(got) == len(LABELS)
    img = got.image(3)
    assert isinstance(img, Image.Image) and img.size == (13, 6)
    assert got.images[-1].size == (17, 6)
    assert [row_of(i) for i in got.images[2:4]] == [2, 3]
    with pytest.raises(IndexError):
        got.images[len(LABELS)]


def test_dataset_dict_picks_the_registry_split(tmp_path: Path):
    test = dataset([0, 1], datasets.ClassLabel(names=["a", "b"]), "image", "label")
    train = dataset([1, 1, 0], datasets.ClassLabel(names=["a", "b"]), "image", "label")
    datasets.DatasetDict({"validation": test, "train": train}).save_to_disk(str(tmp_path / "imagenet"))
    assert hub.load_hub_image_set("imagenet-1k", "test", path=tmp_path / "imagenet").labels == [0, 1]
    train_set = hub.load_hub_image_set("imagenet-1k", "train", path=tmp_path / "imagenet")
    assert (train_set.labels, train_set.name) == ([1, 1, 0], "imagenet-1k:train")
    datasets.DatasetDict({"train": train}).save_to_disk(str(tmp_path / "only-train"))
    with pytest.raises(TadaError) as exc:
        hub.load_hub_image_set("imagenet-1k", "test", path=tmp_path / "only-train")
    assert "no split 'validation'" in one_line(exc)


def test_sample_is_seeded_and_lazy(cifar: Path):
    first = hub.hub_sample("cifar100", n=3, path=cifar)
    again = hub.hub_sample("cifar100", n=3, seed=42, path=cifar)
    other = hub.hub_sample("cifar100", n=3, seed=7, path=cifar)
    rows = [row_of(img) for img in first.pil_images()]
    assert rows == [row_of(img) for img in again.pil_images()]
    assert rows != [row_of(img) for img in other.pil_images()]
    assert isinstance(first.images, hub.HubImages)
    assert first.labels == [LABELS[r] for r in rows] and first.classes == CLASSES
    # the same draw as images.sample on the decoded set
    assert [row_of(img) for img in sample(hub.load_hub_image_set("cifar100", path=cifar), 3).images] == rows


def test_medmnist_one_element_lists_are_unwrapped(tmp_path: Path):
    names = ["adipose", "background", "debris"]
    dataset([[2], [0], [1]], datasets.List(datasets.ClassLabel(names=names)), "image", "label") \
        .save_to_disk(str(tmp_path / "path"))
    got = hub.load_hub_image_set("pathmnist", path=tmp_path / "path")
    assert (got.labels, got.classes) == ([2, 0, 1], names)
    dataset([[5], [3], [5]], datasets.List(datasets.Value("int64")), "image", "label") \
        .save_to_disk(str(tmp_path / "ints"))
    got = hub.load_hub_image_set("dermamnist", path=tmp_path / "ints")
    assert (got.labels, got.classes) == ([1, 0, 1], ["3", "5"])


def test_multi_label_rows_error_in_one_line(tmp_path: Path):
    dataset([[0], [0, 1]], datasets.List(datasets.Value("int64")), "image", "label") \
        .save_to_disk(str(tmp_path / "multi"))
    with pytest.raises(TadaError) as exc:
        hub.load_hub_image_set("pathmnist", path=tmp_path / "multi")
    assert "row 1 has 2 labels" in one_line(exc)


def test_plain_int_labels_sort_numerically(tmp_path: Path):
    dataset([10, 3, 10, 7], datasets.Value("int64"), "image", "label").save_to_disk(str(tmp_path / "d"))
    got = hub.load_hub_image_set("dtd", path=tmp_path / "d")
    assert (got.labels, got.classes) == ([2, 0, 2, 1], ["3", "7", "10"])


def test_parquet_folder_with_imagefolder_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    folder = tmp_path / "eurosat"
    dataset([1, 0, 1], datasets.ClassLabel(names=["Forest", "River"]), "image", "label") \
        .to_parquet(str(folder / "test-00000-of-00001.parquet"))
    got = hub.load_hub_image_set("eurosat", "test", path=folder)
    assert (got.labels, got.classes) == ([1, 0, 1], ["Forest", "River"])
    assert got.image(2).size == (12, 6)
    # cifar100's registry columns are img/fine_label: a local copy with image/label falls back
    assert hub.load_hub_image_set("cifar100", "test", path=folder).labels == [1, 0, 1]


def test_unknown_name_lists_the_names():
    with pytest.raises(TadaError) as exc:
        hub.load_hub_image_set("cifar10")
    message = one_line(exc)
    assert all(name in message for name in hub.HUB_IMAGE_SETS)


def test_bad_split_and_missing_column(cifar: Path, tmp_path: Path):
    with pytest.raises(TadaError) as exc:
        hub.load_hub_image_set("cifar100", "validation", path=cifar)
    assert "choose test or train" in one_line(exc)
    dataset([0, 1], datasets.ClassLabel(names=["a", "b"]), "picture", "fine_label") \
        .save_to_disk(str(tmp_path / "odd"))
    with pytest.raises(TadaError) as exc:
        hub.load_hub_image_set("cifar100", path=tmp_path / "odd")
    assert "no image column 'img'" in one_line(exc)


def test_missing_local_copy_is_one_line(tmp_path: Path):
    with pytest.raises(TadaError) as exc:
        hub.load_hub_image_set("cifar100", path=tmp_path / "nowhere")
    assert "not found" in one_line(exc)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TadaError) as exc:
        hub.load_hub_image_set("cifar100", path=tmp_path / "empty")
    assert "cannot load cifar100" in one_line(exc)


def test_unreachable_hub_is_one_line(monkeypatch: pytest.MonkeyPatch):
    calls = []

    def offline(hub_id, config, split):
        calls.append((hub_id, config, split))
        raise ConnectionError("Couldn't reach 'x' on the Hub (LocalEntryNotFoundError)\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(TadaError) as exc:
        hub.load_hub_image_set("pathmnist", "train")
    message = one_line(exc)
    assert calls == [("albertvillanova/medmnist-v2", "pathmnist", "train")]
    assert "cannot load pathmnist (albertvillanova/medmnist-v2, pathmnist, split train)" in message
    assert "LocalEntryNotFoundError" in message and "HF_HUB_OFFLINE=1" in message
    with pytest.raises(TadaError) as exc:
        hub.hub_sample("imagenet-1k")
    assert "split validation" in one_line(exc) and "gated" in str(exc.value)
    assert calls[-1] == ("ILSVRC/imagenet-1k", None, "validation")


def test_offline_mode_fails_at_once(monkeypatch: pytest.MonkeyPatch):
    """The real datasets.load_dataset with HF_HUB_OFFLINE: no network, a one-line error."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TadaError) as exc:
        hub.load_hub_image_set("eurosat")
    assert "cannot load eurosat (blanchon/EuroSAT_RGB, split test)" in one_line(exc)
