"""Turn a user's drawing or uploaded PNG into an MNIST-like 28x28 uint8 digit.

MNIST's recipe (LeCun et al.): the NIST digit is size-normalised to fit a 20x20 box preserving
its aspect ratio (anti-aliasing turns the binary strokes into grey levels), then put in a 28x28
field so that its centre of mass sits at the centre. Measured on the first 20 000 MNIST
training images: the bounding box of nonzero pixels has longer side 20 in 99.98 %, and the
centre of mass, in pixel-index coordinates (pixel (r, c) centred at (r, c)), is
(14.0, 14.0) +- 0.29, i.e. an integer shift rounding it to (14, 14). MNIST digits are white
ink (255) on black (0).

`preprocess_drawing` follows that recipe for any size of drawing:
  1. ink: if the image has an alpha channel that varies, ink = alpha (a canvas draws strokes
     on a transparent background, in any colour); otherwise ink = luminance, inverted when the
     background (the border's median) is light. The background level is subtracted and the
     darkest-to-brightest range stretched to [0, 1].
  2. crop to the bounding box of pixels with ink > INK_LEVEL,
  3. resize so the longer side is 20 px (aspect kept; PIL's bilinear filter widens its support
     when shrinking, so it anti-aliases), and stretch to max 255 again (90 % of MNIST digits
     reach 255),
  4. paste into 28x28 at the integer offset that puts the centre of mass nearest (14, 14); the
     offset is clamped so no ink is cut off (then the centre may be off for extremely
     lopsided shapes, as it is for a few MNIST digits touching the border).

`load_upload` is the gate for untrusted uploaded bytes: size limit, PNG only, decompression-bomb
check from the header before decoding, grayscale only, and 28x28 unless resizing is asked for.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.text import literal

MNIST_SIZE = 28  # output side
BOX = 20  # MNIST's size-normalised bounding box side
CENTRE = 14.0  # target centre of mass (row, col) in pixel-index coordinates
INK_LEVEL = 0.1  # a pixel is "ink" for the bounding box if its stretched intensity exceeds this
MIN_CONTRAST = 0.05  # below this ink range the drawing counts as empty
MAX_UPLOAD_BYTES = 1_000_000  # 1 MB
MAX_UPLOAD_PIXELS = 4_000_000  # e.g. 2000 x 2000; checked from the header, before decoding
GREY_TOLERANCE = 2  # R, G, B may differ by this much (rounding) and still count as grey


class ImageError(ValueError):
    """The uploaded file cannot be used as a digit; the message says why, for the user."""


def _channels(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W) luminance and (H, W) alpha or None, both float64 in [0, 1].

    Accepts (H, W) gray, (H, W, 1), (H, W, 2) gray+alpha, (H, W, 3) RGB or (H, W, 4) RGBA.
    Integer arrays are 0-255; float arrays must already be in [0, 1].
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        raise ValueError(f"expected a gray (H, W) or (H, W, 2/3/4-channel) image, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"the image is empty (shape {a.shape})")
    if a.dtype == np.bool_:
        a = a.astype(np.float64)
    elif np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float64) / 255.0
    else:
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise ValueError("the image contains NaN or infinite values")
    if a.min() < 0.0 or a.max() > 1.0:
        raise ValueError(
            f"pixel values must be in [0, 1] (float) or 0-255 (integer), got range [{a.min():g}, {a.max():g}]"
        )
    if a.ndim == 2:
        return a, None
    if a.shape[2] == 2:
        return a[:, :, 0], a[:, :, 1]
    luminance = a[:, :, :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R 601, as PIL's "L"
    return luminance, (a[:, :, 3] if a.shape[2] == 4 else None)


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def ink(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 ink in [0, 1], white-on-black like MNIST (no cropping or stretching).

    Alpha decides when it varies (strokes on a transparent canvas); otherwise the luminance is
    used, inverted if the background (median of the border pixels) is light.
    """
    luminance, alpha = _channels(image)
    if alpha is not None and alpha.max() > alpha.min():
        return alpha
    if np.median(_border(luminance)) > 0.5:
        return 1.0 - luminance
    return luminance


def _centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(a.shape)
    total = a.sum()
    return float((rows * a).sum() / total), float((cols * a).sum() / total)


def preprocess_drawing(image: np.ndarray) -> np.ndarray:
    """Any-size drawing (gray, gray+alpha, RGB or RGBA array) -> MNIST-like (28, 28) uint8.

    Raises ValueError if there is no ink (an empty canvas).
    """
    x = ink(image)  # (H, W) in [0, 1]
    background = float(np.median(_border(x)))
    x = np.clip(x - background, 0.0, None)
    if x.max() < MIN_CONTRAST:
        raise ValueError("the drawing is empty: draw a digit first")
    x /= x.max()
    rows, cols = np.nonzero(x > INK_LEVEL)
    x = x[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]  # crop to the ink's bounding box

    h, w = x.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL wants (width, height)
    patch = np.asarray(
        Image.fromarray(x.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR), dtype=np.float64
    )
    patch = np.clip(patch, 0.0, None)
    if patch.max() <= 0:  # cannot happen for a non-empty crop, but never divide by zero
        raise ValueError("the drawing is empty: draw a digit first")
    patch /= patch.max()

    cy, cx = _centre_of_mass(patch)
    ph, pw = patch.shape
    top = min(max(round(CENTRE - cy), 0), MNIST_SIZE - ph)  # clamp: never cut ink off
    left = min(max(round(CENTRE - cx), 0), MNIST_SIZE - pw)
    out = np.zeros((MNIST_SIZE, MNIST_SIZE))
    out[top : top + ph, left : left + pw] = patch
    return np.round(out * 255).astype(np.uint8)


def _decode_png(data: bytes) -> Image.Image:
    """Open and fully decode PNG bytes, turning every failure into an ImageError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=["PNG"])  # reads the header only
            width, height = img.size
            if width * height > MAX_UPLOAD_PIXELS:
                raise ImageError(
                    f"image is {width}x{height} pixels; at most {MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels are accepted"
                )
            img.load()  # decode now, inside the guard
    except ImageError:
        raise
    except UnidentifiedImageError as e:
        raise ImageError(
            "not a PNG image: the file could not be read as a picture (upload a .png, e.g. a screenshot of a digit)"
        ) from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(
            f"image is too large to decode safely (it declares more than {MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels, "
            "or compresses suspiciously well)"
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated / corrupt PNG data
        raise ImageError(f"the PNG file is damaged and could not be decoded ({literal(str(e), 80)})") from e
    return img


def _grey_array(img: Image.Image) -> np.ndarray:
    """The decoded image as a gray (H, W) or gray+alpha (H, W, 2) uint8 array; colour -> ImageError."""
    mode = img.mode
    if mode.startswith("I"):  # 16-bit grayscale PNG ("I;16", or "I" in older Pillow)
        a = np.asarray(img, dtype=np.float64)
        return np.round(np.clip(a / 65535.0, 0.0, 1.0) * 255).astype(np.uint8)
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"))
    if mode == "LA":
        return np.asarray(img)
    rgba = np.asarray(img.convert("RGBA")).astype(np.int16)  # (H, W, 4); P may carry colour + alpha
    visible = rgba[:, :, 3] > 0  # fully transparent pixels may hide any colour: ignore them
    rgb = rgba[:, :, :3][visible]  # (n_visible, 3)
    spread = int((rgb.max(axis=1) - rgb.min(axis=1)).max()) if len(rgb) else 0
    if spread > GREY_TOLERANCE:
        raise ImageError(
            f"the image is in colour (mode {mode}); it must be grayscale, like MNIST: black and white or shades of grey"
        )
    grey = np.round(rgba[:, :, :3].mean(axis=2)).astype(np.uint8)
    if (rgba[:, :, 3] < 255).any():
        return np.stack([grey, rgba[:, :, 3].astype(np.uint8)], axis=2)
    return grey


def load_upload(data: bytes, resize: bool = False) -> np.ndarray:
    """Validate untrusted PNG bytes and return an MNIST-like (28, 28) uint8 digit.

    A 28x28 image keeps its pixels (only turned white-on-black if it is dark-on-light or drawn
    with transparency); resize=True runs every image through `preprocess_drawing` instead
    (crop, scale to 20 px, centre). Raises ImageError with a user-facing reason.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(f"file is {len(data) / 1e6:.2f} MB; at most {MAX_UPLOAD_BYTES / 1e6:.0f} MB")
    if len(data) == 0:
        raise ImageError("the file is empty")
    img = _decode_png(data)
    grey = _grey_array(img)
    if resize:
        try:
            return preprocess_drawing(grey)
        except ValueError as e:
            raise ImageError(f"no digit found in the image: {e}") from e
    height, width = grey.shape[:2]
    if (height, width) != (MNIST_SIZE, MNIST_SIZE):
        raise ImageError(
            f"image is {width}x{height} pixels; it must be 28x28 like MNIST "
            "(or tick 'resize' to crop, scale and centre it automatically)"
        )
    return np.round(ink(grey) * 255).astype(np.uint8)
