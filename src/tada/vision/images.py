"""Image sets for ViT probes and evaluation, and their pre-processing to ``pixel_values``.

* :func:`preprocess`: PIL images → ``[N, 3, 224, 224]`` float32 with the DINOv2 recipe, run by
  transformers' PIL-backend BiT image processor (no torchvision): RGB conversion, bicubic resize
  to 256 × 256 (SPEC §9, as the paper says; not shorter-side), center crop 224 × 224, scale to
  [0, 1], ImageNet mean/std.
* :class:`ImageSet`: images (in memory, or paths opened when used), integer labels, class names.
* loaders: :func:`image_folder` (one subfolder per class), :func:`fashion_mnist` (the real
  Fashion-MNIST idx files of Debian's ``dataset-fashion-mnist``), :func:`sklearn_digits`;
  :func:`sample` draws a seeded subset; :func:`image_probe_inputs` turns a folder or a loader
  name into preprocessed probe inputs for TaDA.
"""
from __future__ import annotations

import functools
import gzip
import os
import random
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._util import cache_root, first_line
from ..errors import TadaError

if TYPE_CHECKING:  # torch and numpy: annotations here, imported where used (`tada datasets` starts without them)
    import numpy as np
    import torch
    from PIL import Image

#: Debian package with the Fashion-MNIST idx files, and where it puts them.
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_DIR = "usr/share/datasets/fashion-mnist"
#: Label → name, from the dataset's README (label 0 … 9).
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
#: Sizes of the recipe (SPEC §9: resize to 256×256, not shorter-side; crop 224).
RESIZE = 256
CROP_SIZE = 224


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise TadaError("images need Pillow: pip install 'tada[vision]'") from None
    return Image


# ---- pre-processing -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def image_processor():
    """The transformers image processor of the DINOv2 recipe (PIL backend; BiT's processor is the
    one DINOv2 checkpoints ship with). Its RGB conversion replicates a grayscale ("L") channel
    three times and composites any transparency (RGBA, LA, P with a transparent colour) onto a
    white background."""
    _pil()
    try:  # transformers ≥ 5: the PIL backend; 4.x: the PIL/numpy processor
        from transformers import BitImageProcessorPil as Processor
    except ImportError:
        from transformers import BitImageProcessor as Processor
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling

    return Processor(size={"height": RESIZE, "width": RESIZE},
                     crop_size={"height": CROP_SIZE, "width": CROP_SIZE},
                     resample=PILImageResampling.BICUBIC, do_convert_rgb=True,
                     image_mean=IMAGENET_DEFAULT_MEAN, image_std=IMAGENET_DEFAULT_STD)


def preprocess(images: list[Image.Image]) -> torch.Tensor:
    """PIL images of any size and mode → ``pixel_values`` ``[N, 3, 224, 224]`` float32.

    Converted to RGB first ("L" replicated, transparency composited onto white), then resized
    (to 256 × 256, bicubic), center-cropped to 224, scaled to [0, 1] and normalised with the
    ImageNet mean and std.
    """
    if not images:
        raise TadaError("no images to preprocess")
    return image_processor()(list(images), return_tensors="pt")["pixel_values"].float()


# ---- image sets -----------------------------------------------------------------------------


def open_image(path: Path) -> Image.Image:
    """The image at ``path``, decoded; an unreadable file is a one-line TadaError naming it."""
    Image = _pil()
    try:
        with Image.open(path) as img:
            img.load()
            return img
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise TadaError(f"unreadable image file {path}: {first_line(exc)}") from None


@dataclass
class ImageSet:
    """Labelled images. ``images[i]`` is a PIL image, or a ``Path`` opened by :meth:`image`.

    ``labels[i]`` indexes ``classes``; ``name`` says where the set came from.
    """

    images: Sequence[Image.Image | Path]  # a list, or a lazy sequence (hub sets)
    labels: list[int]
    classes: list[str]
    name: str

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise TadaError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")
        if any(not 0 <= label < len(self.classes) for label in self.labels):
            raise TadaError(f"{self.name}: labels must lie in 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return len(self.images)

    def image(self, i: int) -> Image.Image:
        """Image ``i`` as a PIL image (opened from disk when it is a path)."""
        item = self.images[i]
        return open_image(item) if isinstance(item, Path) else item

    def pil_images(self) -> list[Image.Image]:
        """Every image as a PIL image, in order."""
        return [self.image(i) for i in range(len(self))]


def sample(images: ImageSet, n: int, seed: int = 42) -> ImageSet:
    """``n`` images drawn with ``random.Random(seed).sample`` (the rule of text probes); a set of
    ``n`` or fewer is returned whole, with a warning when smaller. Images held by a lazy sequence
    with a ``subset`` method (hub sets) are not decoded."""
    if n < 1:
        raise TadaError(f"cannot sample {n} images; ask for at least 1")
    if len(images) > n:
        chosen = random.Random(seed).sample(range(len(images)), n)
    else:
        if len(images) < n:
            warnings.warn(f"{images.name}: only {len(images)} images (< N={n}); using all of them", stacklevel=2)
        chosen = list(range(len(images)))
    subset = getattr(images.images, "subset", None)  # a lazy sequence (hub sets) stays lazy
    picked = subset(chosen) if subset is not None else [images.images[i] for i in chosen]
    return ImageSet(picked, [images.labels[i] for i in chosen], list(images.classes), images.name)


# ---- loaders --------------------------------------------------------------------------------


def _image_suffixes() -> set[str]:
    """The file suffixes Pillow can open (``.png``, ``.jpg``…), lower-case."""
    Image = _pil()
    Image.init()
    return {suffix.lower() for suffix in Image.registered_extensions()}


def _image_files(folder: Path, suffixes: set[str]) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted; hidden files and folders skipped)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _check_image(path: Path) -> None:
    """Reads the header and verifies the file's structure without decoding the pixels."""
    Image = _pil()
    try:
        with Image.open(path) as img:
            img.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise TadaError(f"unreadable image file {path}: {first_line(exc)}") from None


def image_folder(path: str | os.PathLike, *, allow_flat: bool = False) -> ImageSet:
    """An ImageFolder layout: ``path/<class>/<image>``, classes sorted by name, labels their
    index; images found recursively inside each class folder and opened lazily.

    Every file with an image suffix Pillow knows is checked when the set is built (an unreadable
    one is an error naming it); other files are ignored. ``allow_flat``: a folder with no
    subfolders but images of its own is one class named after the folder.
    """
    root = Path(path)
    if not root.exists():
        raise TadaError(f"image folder not found: {path}")
    if not root.is_dir():
        raise TadaError(f"not a folder: {path} (expected one subfolder of images per class)")
    suffixes = _image_suffixes()
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if class_dirs:
        files = [(_image_files(d, suffixes), d.name) for d in class_dirs]
        empty = [name for found, name in files if not found]
        if empty:
            raise TadaError(f"class folder {root / empty[0]} has no image files")
    else:
        flat = _image_files(root, suffixes) if allow_flat else []
        if not flat:
            what = "no class subfolders" if not allow_flat else "no images and no class subfolders"
            raise TadaError(f"{path}: {what} (expected {path}/<class>/<image>)")
        files = [(flat, root.name)]
    images: list[Image.Image | Path] = []
    labels: list[int] = []
    for label, (found, _) in enumerate(files):
        for file in found:
            _check_image(file)
            images.append(file)
            labels.append(label)
    return ImageSet(images, labels, [name for _, name in files], str(root))


def fashion_mnist_dir() -> Path:
    """The folder of the Fashion-MNIST idx files: the installed Debian package's, else the
    ``.deb`` fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into
    ``$TADA_CACHE/debian/dataset-fashion-mnist`` (no root needed; about 31 MB, once)."""
    installed = Path("/") / FASHION_MNIST_DIR
    if (installed / "t10k-labels-idx1-ubyte.gz").is_file():
        return installed
    cache = cache_root() / "debian" / FASHION_MNIST_PACKAGE
    unpacked = cache / FASHION_MNIST_DIR
    if not (unpacked / "t10k-labels-idx1-ubyte.gz").is_file():
        try:
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                subprocess.run(["apt-get", "download", FASHION_MNIST_PACKAGE], cwd=tmp, check=True,
                               capture_output=True, text=True, timeout=600)
                deb = next(Path(tmp).glob("*.deb"))
                subprocess.run(["dpkg", "-x", str(deb), str(cache)], check=True, capture_output=True, text=True)
        except (OSError, StopIteration, subprocess.SubprocessError) as exc:
            detail = (getattr(exc, "stderr", None) or str(exc) or type(exc).__name__).strip()
            raise TadaError(f"Fashion-MNIST needs Debian's {FASHION_MNIST_PACKAGE} (apt-get install "
                            f"{FASHION_MNIST_PACKAGE}); fetching it failed: {first_line(detail)}") from None
    return unpacked


def read_idx(path: Path, magic: int) -> np.ndarray:
    """A gzipped idx file (big-endian int32 magic, then one int32 per dimension, then uint8)."""
    import numpy as np
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise TadaError(f"cannot read {path}: {first_line(exc)}") from None
    ndim = magic & 0xFF
    header = np.frombuffer(data, ">i4", count=1 + ndim) if len(data) >= 4 * (1 + ndim) else np.array([])
    shape = tuple(int(d) for d in header[1:])
    if header.size == 0 or int(header[0]) != magic or len(data) != 4 * (1 + ndim) + int(np.prod(shape)):
        raise TadaError(f"{path}: not an idx file with magic {magic:#x}")
    return np.frombuffer(data, np.uint8, offset=4 * (1 + ndim)).reshape(shape)


def fashion_mnist(split: str = "train") -> ImageSet:
    """Fashion-MNIST (Zalando, MIT): 60,000 ``train`` or 10,000 ``test`` 28×28 grayscale ("L")
    images, labels 0–9 named in :data:`FASHION_MNIST_CLASSES`."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise TadaError(f"unknown Fashion-MNIST split {split!r}; choose train or test")
    Image = _pil()
    folder = fashion_mnist_dir()
    pixels = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz", 0x803)
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 0x801)
    if len(pixels) != len(labels):
        raise TadaError(f"{folder}: {len(pixels)} {split} images but {len(labels)} labels")
    return ImageSet([Image.fromarray(p) for p in pixels], labels.astype(int).tolist(),
                    list(FASHION_MNIST_CLASSES), f"fashion-mnist:{split}")


#: scikit-learn's digits has no split: these many images, drawn with ``random.Random(0)``, are the
#: ``test`` split and the rest the ``train`` split (fixed, so adapters never train on test images).
DIGITS_TEST_SIZE = 500


def sklearn_digits(split: str = "all") -> ImageSet:
    """scikit-learn's handwritten digits: 1,797 8×8 grayscale ("L") images, classes "0"–"9"
    (grey levels 0–16 scaled to 0–255). ``split``: ``all``, or a fixed ``test`` split of
    :data:`DIGITS_TEST_SIZE` images and the ``train`` split of the other 1,297."""
    if split not in ("all", "train", "test"):
        raise TadaError(f"unknown digits split {split!r}; choose all, train or test")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise TadaError("the digits set needs scikit-learn: pip install 'tada[vision]'") from None
    import numpy as np

    Image = _pil()
    digits = load_digits()
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    keep: Sequence[int] = range(len(pixels))
    if split != "all":
        test = set(random.Random(0).sample(range(len(pixels)), DIGITS_TEST_SIZE))
        keep = [i for i in keep if (i in test) == (split == "test")]
    name = "sklearn-digits" if split == "all" else f"sklearn-digits:{split}"
    return ImageSet([Image.fromarray(pixels[i]) for i in keep], [int(digits.target[i]) for i in keep],
                    [str(c) for c in digits.target_names], name)
