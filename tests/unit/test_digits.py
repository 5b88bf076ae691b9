"""core.digits: MNIST-style preprocessing of drawings and the guarded PNG upload path."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile

from core.digits import BOX, MAX_UPLOAD_BYTES, ImageError, ink, load_upload, preprocess_drawing


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    a = a.astype(np.float64)
    rows, cols = np.indices(a.shape)
    return (rows * a).sum() / a.sum(), (cols * a).sum() / a.sum()


def bbox(a: np.ndarray) -> tuple[int, int]:
    """(height, width) of the bounding box of nonzero pixels."""
    rows, cols = np.nonzero(a)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def stroke_canvas(width: int = 300, height: int = 200, line: int = 12) -> np.ndarray:
    """A gray (H, W) uint8 white-on-black '7'-like stroke, far from the canvas centre."""
    img = Image.new("L", (width, height), 0)
    d = ImageDraw.Draw(img)
    d.line([(30, 20), (110, 20), (60, 150)], fill=255, width=line)
    return np.asarray(img)


def check_mnist_like(out: np.ndarray) -> None:
    assert out.shape == (28, 28) and out.dtype == np.uint8
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1, (cy, cx)
    assert max(bbox(out)) in (BOX - 1, BOX, BOX + 1)
    assert out.max() == 255


# --- preprocess_drawing: the MNIST recipe ------------------------------------------------------


def canvas_variants() -> dict[str, np.ndarray]:
    white_on_black = stroke_canvas()
    black_on_white = 255 - white_on_black
    transparent = np.zeros((*white_on_black.shape, 4), np.uint8)  # black strokes, alpha = ink
    transparent[:, :, 3] = white_on_black
    white_bg_rgba = np.dstack([black_on_white] * 3 + [np.full_like(white_on_black, 255)])
    return {
        "gray white on black": white_on_black,
        "gray black on white": black_on_white,
        "rgba black strokes on transparent": transparent,
        "rgba black on opaque white": white_bg_rgba,
        "rgb black on white": np.dstack([black_on_white] * 3),
        "float white on black": white_on_black / 255.0,
        "gray+alpha": np.dstack([np.zeros_like(white_on_black), white_on_black]),
    }


@pytest.mark.parametrize("name", list(canvas_variants()))
def test_every_canvas_style_gives_the_same_mnist_digit(name):
    reference = preprocess_drawing(stroke_canvas())
    out = preprocess_drawing(canvas_variants()[name])
    check_mnist_like(out)
    assert cosine(out, reference) > 0.99


def test_centring_and_scaling_of_an_off_centre_blob():
    canvas = np.zeros((400, 400), np.uint8)
    canvas[300:380, 20:60] = 255  # an 80 x 40 block in a corner
    out = preprocess_drawing(canvas)
    check_mnist_like(out)
    h, w = bbox(out)
    assert h == 20 and w == 10  # aspect ratio kept: 2:1
    assert centre_of_mass(out) == pytest.approx((14, 14), abs=0.5)


def test_small_drawings_are_scaled_up():
    canvas = np.zeros((50, 50), np.uint8)
    canvas[10:16, 30:34] = 255  # a 6 x 4 dot
    out = preprocess_drawing(canvas)
    check_mnist_like(out)
    h, w = bbox(out)
    assert h in (20, 21) and abs(w - 13) <= 2


def test_thin_horizontal_line_keeps_its_aspect():
    canvas = np.zeros((100, 300), np.uint8)
    canvas[50:53, 20:280] = 255
    out = preprocess_drawing(canvas)
    h, w = bbox(out)
    assert w in (19, 20, 21) and h <= 2
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1


@pytest.mark.parametrize(
    "blank",
    [
        np.zeros((280, 280, 4), np.uint8),  # an untouched transparent canvas
        np.full((280, 280, 4), 255, np.uint8),  # opaque white canvas
        np.zeros((100, 100), np.uint8),
        np.full((100, 100), 255, np.uint8),
        np.full((64, 64), 0.5),
    ],
)
def test_empty_drawing_raises(blank):
    with pytest.raises(ValueError, match="empty"):
        preprocess_drawing(blank)


@pytest.mark.parametrize("bad", [np.zeros((5, 5, 5)), np.zeros((0, 4)), np.full((4, 4), 2.0), np.full((4, 4), np.nan)])
def test_bad_arrays_raise(bad):
    with pytest.raises(ValueError):
        preprocess_drawing(bad)


def test_mnist_digits_round_trip(mnist):
    similarities = []
    for i in range(60):
        digit = mnist.test_x[i].numpy()
        out = preprocess_drawing(digit)
        check_mnist_like(out)
        similarities.append(cosine(out, digit))
    assert min(similarities) > 0.8
    assert np.mean(similarities) > 0.95


def test_mnist_digit_drawn_on_a_big_transparent_canvas_round_trips(mnist):
    """A canvas gives black strokes on transparent at 10x scale: the digit comes back."""
    digit = mnist.test_x[0].numpy()
    alpha = np.asarray(Image.fromarray(digit).resize((280, 280), Image.Resampling.BILINEAR))
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[:, :, 3] = alpha
    assert cosine(preprocess_drawing(canvas), digit) > 0.9


def test_ink_polarity():
    light = np.full((10, 10), 230, np.uint8)
    light[4:6, 4:6] = 0
    assert ink(light)[5, 5] == pytest.approx(1.0) and ink(light)[0, 0] == pytest.approx(1 - 230 / 255)
    dark = 255 - light
    assert ink(dark)[5, 5] == pytest.approx(1.0)


# --- load_upload: untrusted bytes -------------------------------------------------------------


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


def test_too_big_file():
    data = b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES + 200_000)
    with pytest.raises(ImageError, match=r"file is 1\.20 MB; at most 1 MB"):
        load_upload(data)


@pytest.mark.parametrize("data", [b"hello, not an image", b"", b"%PDF-1.4 ...", bytes(range(256)) * 3])
def test_not_an_image(data):
    with pytest.raises(ImageError):
        load_upload(data)


def test_not_a_png_says_so():
    with pytest.raises(ImageError, match="not a PNG"):
        load_upload(b"hello, not an image")
    buf = io.BytesIO()
    Image.new("L", (28, 28)).save(buf, format="JPEG")
    with pytest.raises(ImageError, match="not a PNG"):
        load_upload(buf.getvalue())


def test_truncated_png():
    data = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)))
    with pytest.raises(ImageError, match="damaged"):
        load_upload(data[: len(data) // 2])


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_colour_image_rejected(mode):
    img = Image.new(mode, (28, 28), (0, 0, 0, 255)[: len(mode)])
    img.putpixel((10, 10), (200, 30, 30, 255)[: len(mode)])
    with pytest.raises(ImageError, match="grayscale"):
        load_upload(png_bytes(img))


def test_colour_palette_rejected_and_grey_palette_accepted():
    colour = Image.new("P", (28, 28), 0)
    colour.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    colour.putpixel((5, 5), 1)
    with pytest.raises(ImageError, match="grayscale"):
        load_upload(png_bytes(colour))
    grey = Image.new("P", (28, 28), 0)
    grey.putpalette([0, 0, 0, 200, 200, 200] + [0] * 762)
    grey.putpixel((5, 5), 1)
    out = load_upload(png_bytes(grey))
    assert out[5, 5] == 200 and out.sum() == 200


def test_grey_rgb_is_accepted():
    a = np.zeros((28, 28), np.uint8)
    a[10:18, 12:15] = 180
    out = load_upload(png_bytes(Image.fromarray(np.dstack([a] * 3))))
    np.testing.assert_array_equal(out, a)


def test_transparent_pixels_may_hide_any_colour():
    """A canvas export: black strokes, transparent background whose hidden RGB is red."""
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[:, :, 0] = 255  # invisible red
    rgba[8:20, 13:15] = (0, 0, 0, 255)
    out = load_upload(png_bytes(Image.fromarray(rgba, mode="RGBA")))
    assert out[10, 13] == 255 and out[0, 0] == 0


def test_wrong_size_names_the_size():
    with pytest.raises(ImageError, match="30x20"):
        load_upload(png_bytes(Image.new("L", (30, 20))))


def test_wrong_size_with_resize_is_preprocessed():
    img = Image.fromarray(stroke_canvas())
    out = load_upload(png_bytes(img), resize=True)
    check_mnist_like(out)
    assert cosine(out, preprocess_drawing(stroke_canvas())) > 0.99


def test_blank_upload_with_resize_raises():
    with pytest.raises(ImageError, match="no digit"):
        load_upload(png_bytes(Image.new("L", (100, 100), 255)), resize=True)


def test_mnist_digit_upload_is_exact(mnist):
    digit = mnist.test_x[7].numpy()
    np.testing.assert_array_equal(load_upload(png_bytes(Image.fromarray(digit))), digit)


def test_dark_on_light_28x28_is_inverted(mnist):
    digit = mnist.test_x[7].numpy()
    np.testing.assert_array_equal(load_upload(png_bytes(Image.fromarray(255 - digit))), digit)


def test_sixteen_bit_png(mnist):
    digit = mnist.test_x[2].numpy()
    img = Image.fromarray(digit.astype(np.uint16) * 257)  # 16-bit grayscale
    out = load_upload(png_bytes(img))
    np.testing.assert_array_equal(out, digit)


def test_black_and_white_mode_1():
    a = np.zeros((28, 28), bool)
    a[5:20, 10:13] = True
    out = load_upload(png_bytes(Image.fromarray(a)))
    assert set(np.unique(out).tolist()) == {0, 255} and out[10, 11] == 255


def test_decompression_bomb_is_refused_before_decoding(monkeypatch):
    """A 6000 x 6000 blank PNG is a few kB; it must be refused from its header alone."""
    data = png_bytes(Image.new("1", (6000, 6000)))
    assert len(data) < MAX_UPLOAD_BYTES

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the pixels were decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match="6000x6000"):
        load_upload(data)
    with pytest.raises(ImageError, match="6000x6000"):
        load_upload(data, resize=True)
