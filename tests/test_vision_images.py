"""Image sets and pre-processing (tada.vision.images): fast, no model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

Image = pytest.importorskip("PIL.Image")

from tada.errors import TadaError
from tada.vision import images as vi
from tada.vision import sources as vs

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def noise_image(h: int, w: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels)


def manual_preprocess(img: Image.Image) -> np.ndarray:
    """The recipe by hand (SPEC §9): bicubic resize to 256 × 256, center crop 224, [0, 1],
    ImageNet mean/std → [3, 224, 224]."""
    size = (256, 256)
    resized = np.asarray(img.convert("RGB").resize(size, Image.Resampling.BICUBIC), dtype=np.float64)
    top, left = (resized.shape[0] - 224) // 2, (resized.shape[1] - 224) // 2
    crop = resized[top:top + 224, left:left + 224] / 255.0
    return ((crop - MEAN) / STD).transpose(2, 0, 1)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


def test_preprocess_matches_manual_recipe():
    img = noise_image(300, 400)  # landscape: squeezed to 256×256, cropped at (16, 16)
    out = vi.preprocess([img, noise_image(401, 257, seed=1)])
    assert out.shape == (2, 3, 224, 224) and out.dtype == torch.float32
    np.testing.assert_allclose(out[0].numpy(), manual_preprocess(img), atol=1e-5)
    np.testing.assert_allclose(out[1].numpy(), manual_preprocess(noise_image(401, 257, seed=1)), atol=1e-5)


def test_grayscale_palette_and_transparency_become_rgb():
    gray = noise_image(64, 80, mode="L")
    np.testing.assert_array_equal(vi.preprocess([gray]), vi.preprocess([gray.convert("RGB")]))
    palette = noise_image(64, 80).convert("P")
    np.testing.assert_array_equal(vi.preprocess([palette]), vi.preprocess([palette.convert("RGB")]))
    clear = Image.new("RGBA", (50, 40), (0, 0, 0, 0))  # fully transparent black → white
    white = Image.new("RGB", (50, 40), (255, 255, 255))
    np.testing.assert_allclose(vi.preprocess([clear]), vi.preprocess([white]), atol=1e-6)
    opaque = noise_image(40, 50, mode="RGBA")
    opaque.putalpha(255)
    np.testing.assert_array_equal(vi.preprocess([opaque]), vi.preprocess([opaque.convert("RGB")]))


def write_folder(root, classes=("cat", "dog"), per_class=3):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            noise_image(20 + i, 30, seed=10 * c + i).save(root / name / f"{i}.png")
    return root


def test_image_folder_happy_path(tmp_path):
    root = write_folder(tmp_path / "set")
    (root / "cat" / "notes.txt").write_text("not an image, ignored")
    (root / "dog" / "sub").mkdir()
    noise_image(10, 10, mode="L").save(root / "dog" / "sub" / "deep.png")
    s = vi.image_folder(root)
    assert s.classes == ["cat", "dog"] and len(s) == 7
    assert s.labels == [0, 0, 0, 1, 1, 1, 1]
    assert s.image(6).size == (10, 10) and s.image(0).size == (30, 20)
    assert vs.image_probe_inputs(root, 4).shape == (4, 3, 224, 224)


def test_image_folder_errors_are_one_line(tmp_path):
    with pytest.raises(TadaError, match="not found") as e:
        vi.image_folder(tmp_path / "missing")
    one_line(e)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TadaError, match="no class subfolders") as e:
        vi.image_folder(tmp_path / "empty")
    one_line(e)
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    with pytest.raises(TadaError, match="no image files") as e:
        vi.image_folder(tmp_path / "noimg")
    one_line(e)
    root = write_folder(tmp_path / "bad")
    (root / "dog" / "broken.png").write_bytes(b"this is not a png\n" * 3)
    with pytest.raises(TadaError, match="unreadable image file .*broken.png") as e:
        vi.image_folder(root)
    one_line(e)
    with pytest.raises(TadaError, match="image source not found") as e:
        vs.image_probe_inputs("no-such-loader", 4)
    one_line(e)


def test_flat_folder_is_one_class_for_probes(tmp_path):
    for i in range(3):
        noise_image(32, 32, seed=i).save(tmp_path / f"{i}.png")
    with pytest.raises(TadaError):
        vi.image_folder(tmp_path)
    s = vs.load_image_set(tmp_path)
    assert s.classes == [tmp_path.name] and len(s) == 3


def test_sample_is_seeded():
    digits = vi.sklearn_digits()
    a, b, c = vi.sample(digits, 16), vi.sample(digits, 16), vi.sample(digits, 16, seed=1)
    assert a.labels == b.labels and [id(x) for x in a.images] == [id(x) for x in b.images]
    assert [id(x) for x in a.images] != [id(x) for x in c.images]
    with pytest.warns(UserWarning, match="only 1797 images"):
        assert len(vi.sample(digits, 5000)) == 1797
    with pytest.raises(TadaError):
        vi.sample(digits, 0)
    torch.testing.assert_close(vs.image_probe_inputs("sklearn-digits", 3),
                               vi.preprocess(vi.sample(digits, 3).pil_images()))


def test_sklearn_digits():
    digits = vi.sklearn_digits()
    assert len(digits) == 1797 and digits.classes == [str(i) for i in range(10)]
    assert sorted(set(digits.labels)) == list(range(10))
    img = digits.image(0)
    assert img.mode == "L" and img.size == (8, 8)
    from sklearn.datasets import load_digits

    expected = np.rint(load_digits().images[0] * 255 / 16)  # grey levels 0..16 scaled to 0..255
    np.testing.assert_array_equal(np.asarray(img), expected)


def test_digits_splits_are_fixed_and_disjoint_and_names_resolve():
    train, test = vs.load_image_set("sklearn-digits:train"), vs.load_image_set("sklearn-digits:test")
    assert (len(train), len(test)) == (1297, 500) and (train.name, test.name) == ("sklearn-digits:train",
                                                                                  "sklearn-digits:test")
    pixels = {np.asarray(img).tobytes() for img in test.images}
    assert sum(np.asarray(img).tobytes() in pixels for img in train.images) <= 5  # only true duplicate images
    again = vi.sklearn_digits("test")
    assert again.labels == test.labels
    assert vs.load_image_set("sklearn-digits", split="test").labels == test.labels
    with pytest.raises(TadaError, match="unknown digits split"):
        vs.load_image_set("sklearn-digits:val")
    with pytest.raises(TadaError, match="image source not found: nope.*sklearn-digits.*cifar100"):
        vs.load_image_set("nope")


def test_fashion_mnist_is_the_real_dataset():
    """Reads the Debian package's files (fetched once into $TADA_CACHE if not installed: ~1 s)."""
    try:
        train, test = vi.fashion_mnist("train"), vi.fashion_mnist("test")
    except TadaError as exc:
        if "fetching it failed" not in str(exc):
            raise
        pytest.skip(f"Fashion-MNIST not installed and not fetchable here: {exc}")
    assert (len(train), len(test)) == (60000, 10000)
    assert sorted(set(train.labels)) == sorted(set(test.labels)) == list(range(10))
    assert [train.labels.count(k) for k in range(10)] == [6000] * 10  # the published class balance
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    img = train.image(0)
    assert img.mode == "L" and img.size == (28, 28)
    assert train.labels[:3] == [9, 0, 0] and test.labels[:3] == [9, 2, 1]  # the files' first labels
    with pytest.raises(TadaError, match="split"):
        vi.fashion_mnist("validation")
