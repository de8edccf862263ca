"""The paper's six image-classification benchmarks (Table 4), loaded by Hugging Face hub id.

* :data:`HUB_IMAGE_SETS`: name → :class:`HubImageSet` (hub id, config, split names, columns).
* :func:`load_hub_image_set`: one split as an :class:`~tada.vision.images.ImageSet` whose images
  are decoded lazily (:class:`HubImages`), through ``datasets.load_dataset`` (imported lazily).
* :func:`hub_sample`: the evaluation subset, 500 test examples drawn with ``random.Random(42)``
  (the rule of :func:`tada.vision.images.sample`).

Local copies (``path=``)
------------------------
``path`` replaces the hub id; nothing is then fetched:

* a folder written by ``Dataset.save_to_disk`` (one split, taken as it is) or
  ``DatasetDict.save_to_disk`` (the split is picked by the registry's split name, or by
  ``test``/``train``), read with ``datasets.load_from_disk``;
* any other folder is passed to ``datasets.load_dataset``: data files (parquet, arrow, csv…) or an
  ImageFolder with split subfolders (``test/<class>/<image>``); a snapshot of the hub repository
  (it has the repository's ``README.md``) is loaded with the registry's config, other folders
  without one (point into the config's own folder).

When the registry's image/label column is missing, ``image``/``label`` are used if present
(the columns of ImageFolder data). A plain ImageFolder (``<class>/<image>``, no split folders) is
read by :func:`tada.vision.images.image_folder` instead.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from .._util import first_line
from ..errors import TadaError
from .images import ImageSet, sample

if TYPE_CHECKING:
    from PIL import Image

#: SPEC §9: the evaluation subset of every benchmark, drawn with ``random.Random(SAMPLE_SEED)``.
SAMPLE_SIZE = 500
SAMPLE_SEED = 42
#: Columns used when a local copy lacks the registry's (ImageFolder's names).
FALLBACK_IMAGE_COLUMN = "image"
FALLBACK_LABEL_COLUMN = "label"
OFFLINE_HINT = ("offline? set HF_HUB_OFFLINE=1 to fail at once instead of retrying, and pass "
                "path= a local copy (save_to_disk, parquet or ImageFolder folder)")


@dataclass(frozen=True)
class HubImageSet:
    """One benchmark on the Hugging Face hub: where it is and which columns hold what.

    ``test_split``/``train_split`` are the hub's split names behind tada's ``test``/``train``;
    ``gated``: the dataset needs an accepted licence and a Hugging Face token.
    """

    name: str
    hub_id: str
    config: str | None
    test_split: str
    train_split: str
    image_column: str
    label_column: str
    summary: str
    gated: bool = False

    def split_name(self, split: str) -> str:
        """The hub split behind tada's ``test`` or ``train``."""
        if split == "test":
            return self.test_split
        if split == "train":
            return self.train_split
        raise TadaError(f"unknown split {split!r} for {self.name}; choose test or train")


def _entry(name: str, hub_id: str, config: str | None, summary: str, *, test: str = "test",
           image: str = "image", label: str = "label", gated: bool = False) -> HubImageSet:
    return HubImageSet(name, hub_id, config, test, "train", image, label, summary, gated)


#: The paper's six benchmarks (Table 4).
HUB_IMAGE_SETS: dict[str, HubImageSet] = {entry.name: entry for entry in [
    _entry("imagenet-1k", "ILSVRC/imagenet-1k", None,
           "ImageNet-1k (ILSVRC 2012), 1,000 classes; the labelled validation split is the test set "
           "(the hub's test split has no labels); gated: accept the licence and log in",
           test="validation", gated=True),
    _entry("cifar100", "uoft-cs/cifar100", None, "CIFAR-100, 100 fine classes, 32×32 RGB",
           image="img", label="fine_label"),
    _entry("pathmnist", "albertvillanova/medmnist-v2", "pathmnist",
           "PathMNIST (MedMNIST v2): colon pathology, 9 tissue classes, 28×28 RGB"),
    _entry("dermamnist", "albertvillanova/medmnist-v2", "dermamnist",
           "DermaMNIST (MedMNIST v2): dermatoscopy (HAM10000), 7 classes, 28×28 RGB"),
    _entry("eurosat", "blanchon/EuroSAT_RGB", None, "EuroSAT RGB: Sentinel-2 land use, 10 classes, 64×64"),
    _entry("dtd", "tanganke/dtd", None, "DTD: Describable Textures, 47 classes"),
]}


def hub_image_set(name: str) -> HubImageSet:
    """The registry entry ``name``; an unknown name is a one-line error listing the names."""
    try:
        return HUB_IMAGE_SETS[name]
    except KeyError:
        raise TadaError(f"unknown image benchmark {name!r}; choose one of {', '.join(HUB_IMAGE_SETS)}") from None


# ---- lazy images ----------------------------------------------------------------------------


class HubImages(Sequence):
    """Read-only sequence over the image column of a ``datasets.Dataset``: ``images[i]`` decodes
    row ``i`` only (a PIL image); nothing is decoded up front."""

    def __init__(self, dataset: Any, column: str, name: str = "") -> None:
        self._dataset = dataset.select_columns([column])
        self._column = column
        self._name = name or column

    def __len__(self) -> int:
        return len(self._dataset)

    @overload
    def __getitem__(self, index: int) -> Image.Image: ...

    @overload
    def __getitem__(self, index: slice) -> HubImages: ...

    def __getitem__(self, index: int | slice) -> Image.Image | HubImages:
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"image index {index} out of range for {n} images")
        return self._decode(index % n)

    def _decode(self, i: int) -> Image.Image:
        try:
            image = self._dataset[i][self._column]
        except Exception as exc:  # noqa: BLE001 - any decoder failure is an unreadable image
            raise TadaError(f"{self._name}: cannot decode image {i}: {first_line(exc)}") from None
        if image is None:
            raise TadaError(f"{self._name}: image {i} is missing")
        return image

    def subset(self, indices: Sequence[int]) -> HubImages:
        """The images at ``indices``, still lazy (``Dataset.select``)."""
        return HubImages(self._dataset.select(list(indices)), self._column, self._name)


# ---- loading --------------------------------------------------------------------------------


def _datasets():
    try:
        import datasets
    except ImportError:
        raise TadaError("image benchmarks from the hub need the 'datasets' package: pip install datasets") from None
    return datasets


def _from_hub(entry: HubImageSet, split: str) -> Any:
    """The split from the hub (``datasets.load_dataset``); any failure is one line."""
    datasets = _datasets()
    hub_split = entry.split_name(split)
    try:
        return datasets.load_dataset(entry.hub_id, entry.config, split=hub_split)
    except Exception as exc:  # noqa: BLE001 - offline, gated, missing: all mean "not reachable"
        where = ", ".join(x for x in (entry.hub_id, entry.config, f"split {hub_split}") if x)
        gated = ("; gated: accept its licence on huggingface.co and log in (hf auth login)"
                 if entry.gated else "")
        raise TadaError(f"cannot load {entry.name} ({where}) from the Hugging Face hub: "
                        f"{first_line(exc)}{gated}; {OFFLINE_HINT}") from None


def _from_path(entry: HubImageSet, split: str, path: Path) -> Any:
    """The split from a local copy (see the module docstring); any failure is one line."""
    datasets = _datasets()
    hub_split = entry.split_name(split)
    if not path.exists():
        raise TadaError(f"local copy of {entry.name} not found: {path}")
    try:
        if (path / "dataset_dict.json").is_file():
            return _pick_split(datasets.load_from_disk(str(path)), entry, split, path)
        if (path / "state.json").is_file():
            return datasets.load_from_disk(str(path))
        config = entry.config if (path / "README.md").is_file() else None
        return datasets.load_dataset(str(path), config, split=hub_split)
    except TadaError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable or unexpected layout
        raise TadaError(f"cannot load {entry.name} split {hub_split} from {path}: {first_line(exc)}") from None


def _pick_split(splits: Any, entry: HubImageSet, split: str, path: Path) -> Any:
    """The registry's split name from a saved ``DatasetDict``, else tada's own name."""
    for key in (entry.split_name(split), split):
        if key in splits:
            return splits[key]
    raise TadaError(f"{path} has no split {entry.split_name(split)!r} (it has {', '.join(splits)})")


def _column(dataset: Any, wanted: str, fallback: str, what: str, source: str) -> str:
    """``wanted`` if the dataset has it, else ``fallback``; neither is a one-line error."""
    for column in (wanted, fallback):
        if column in dataset.column_names:
            return column
    raise TadaError(f"{source}: no {what} column {wanted!r} (columns: {', '.join(dataset.column_names)})")


def _unwrap(value: Any, row: int, source: str) -> Any:
    """A label; a one-element list (MedMNIST) is unwrapped, a longer one is an error."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise TadaError(f"{source}: row {row} has {len(value)} labels {list(value)[:5]}; only "
                            "single-label classification is supported")
        return value[0]
    return value


def _class_label_names(feature: Any) -> list[str] | None:
    """The names of a ``ClassLabel`` feature, or of one inside a list feature; else None."""
    from datasets import ClassLabel

    inner = getattr(feature, "feature", None)
    for candidate in (feature, inner):
        if isinstance(candidate, ClassLabel):
            return [str(name) for name in candidate.names]
    return None


def _labels_and_classes(dataset: Any, column: str, source: str) -> tuple[list[int], list[str]]:
    """Labels (indices into the classes) and class names, read without decoding any image."""
    values = [_unwrap(v, i, source) for i, v in enumerate(dataset.select_columns([column])[column])]
    names = _class_label_names(dataset.features[column])
    if names is not None:
        bad = next((i for i, v in enumerate(values) if not isinstance(v, int) or not 0 <= v < len(names)), None)
        if bad is not None:
            raise TadaError(f"{source}: row {bad} has label {values[bad]!r}, not one of the "
                            f"{len(names)} classes (an unlabelled split?)")
        return list(values), names
    distinct = _sorted(set(values))
    index = {value: i for i, value in enumerate(distinct)}
    return [index[v] for v in values], [str(v) for v in distinct]


def _sorted(values: set) -> list:
    try:
        return sorted(values)
    except TypeError:  # mixed types: order by their text
        return sorted(values, key=str)


def _check_image_column(dataset: Any, column: str, source: str) -> None:
    from datasets import Image as ImageFeature

    feature = dataset.features[column]
    if not isinstance(feature, ImageFeature) or not feature.decode:
        raise TadaError(f"{source}: column {column!r} does not hold decodable images ({feature})")


def load_hub_image_set(name: str, split: str = "test", *, path: str | os.PathLike | None = None) -> ImageSet:
    """Split ``split`` (``test`` or ``train``, mapped to the hub's split names) of the benchmark
    ``name`` (:data:`HUB_IMAGE_SETS`), from the hub or, with ``path``, from a local copy (module
    docstring).

    Class names come from the label column's ``ClassLabel`` names, else they are the sorted
    distinct label values as text (labels re-indexed into them). Images are decoded one at a
    time when used (:class:`HubImages`). The set is named ``"<name>:<split>"``. Every failure
    (offline, gated, missing dataset or column, multi-label rows) is a one-line TadaError.
    """
    entry = hub_image_set(name)
    entry.split_name(split)
    dataset = _from_hub(entry, split) if path is None else _from_path(entry, split, Path(path))
    source = f"{name}:{split}" + (f" ({path})" if path is not None else f" ({entry.hub_id})")
    image_column = _column(dataset, entry.image_column, FALLBACK_IMAGE_COLUMN, "image", source)
    label_column = _column(dataset, entry.label_column, FALLBACK_LABEL_COLUMN, "label", source)
    _check_image_column(dataset, image_column, source)
    labels, classes = _labels_and_classes(dataset, label_column, source)
    return ImageSet(HubImages(dataset, image_column, source), labels, classes, f"{name}:{split}")


def hub_sample(name: str, n: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED, split: str = "test",
               path: str | os.PathLike | None = None) -> ImageSet:
    """``n`` examples of a benchmark split, drawn as :func:`tada.vision.images.sample` draws them
    (``random.Random(seed).sample`` over the row indices; a smaller split is taken whole, with a
    warning); the images stay lazy."""
    return sample(load_hub_image_set(name, split, path=path), n, seed)
