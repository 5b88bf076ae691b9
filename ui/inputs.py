"""Where the Explain page's digit comes from: a test image, an uploaded PNG or a mouse drawing.

Whatever the student gave is kept in st.session_state (the upload's bytes, the drawing and its
28x28 version), so leaving the page or switching the source loses nothing. Decoding and the
MNIST-style preprocessing are core.digits; the drawing canvas is the streamlit-drawable-canvas
component, and the page says so and keeps the other inputs if it cannot load.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import streamlit as st

from core.config import N_TEST_MNIST
from core.digits import MAX_UPLOAD_BYTES, ImageError, load_upload, preprocess_drawing
from core.text import literal
from ui import models, resources
from ui.state import notify

log = logging.getLogger("bilinear_eigen_lab")
SOURCES = {"test": "Test image", "upload": "Upload a PNG", "draw": "Draw"}
UPLOADED = "explain_uploaded"  # {"name", "data" (bytes or None), "error" (str or None)}
DRAWING = "explain_drawing"  # the canvas's Fabric.js JSON, to redraw it when the canvas comes back
DRAWING_SHOWN = "explain_drawing_initial"  # what the mounted canvas was started with (kept constant)
DRAWN = "explain_drawn"  # (28, 28) uint8 version of the drawing, or None for an empty canvas
CANVAS = "explain_canvas"
CANVAS_SIZE = 280  # 10 screen pixels per MNIST pixel
STROKE = 20  # ~2 MNIST pixels once the digit is scaled to its 20-pixel box, like MNIST's pen


class Digit(NamedTuple):
    pixels: np.ndarray  # (28, 28) uint8, white ink on black, like MNIST
    caption: str
    label: int | None  # the label under the model's rule (test images only)


# --- test images ---------------------------------------------------------------------------


def pick_misclassified() -> None:
    """Button callback: a random test image the active model gets wrong."""
    trained = models.active()
    wrong = resources.misclassified(trained.model_id, trained)
    if not wrong:
        notify("info", "This model classifies every test image correctly: there is no mistake to pick.")
        return
    st.session_state.explain_index = random.choice(wrong)


def test_digit() -> Digit:
    trained = models.active()
    index_column, button_column = st.columns([2, 3], vertical_alignment="bottom")
    index = index_column.number_input(
        "Test image #", 0, N_TEST_MNIST - 1, step=1, key="explain_index", persist_state="session"
    )
    button_column.button(
        "Random misclassified",
        icon=":material/casino:",
        key="explain_misclassified",
        on_click=pick_misclassified,
        width="stretch",
        help="A random test image that the active model gets wrong.",
    )
    label = int(resources.labels(trained.config)[1][index])
    pixels = resources.mnist().test_x[index].numpy()
    return Digit(pixels, f"Test image #{index}, labelled {'true' if label else 'false'}", label)


# --- uploads -------------------------------------------------------------------------------


def keep_upload() -> None:
    """file_uploader callback: keep the file (or why it is unusable) beyond the widget's life."""
    upload = st.session_state.get("explain_upload")
    if upload is None:  # the student removed it
        st.session_state[UPLOADED] = None
        return
    data = upload.getvalue()
    if len(data) > MAX_UPLOAD_BYTES:  # never keep a big file in the session: keep the reason instead
        st.session_state[UPLOADED] = {
            "name": upload.name,
            "data": None,
            "error": f"file is {len(data) / 1e6:.2f} MB; at most {MAX_UPLOAD_BYTES / 1e6:.0f} MB",
        }
        return
    st.session_state[UPLOADED] = {"name": upload.name, "data": data, "error": None}


def upload_digit() -> Digit | None:
    st.file_uploader(
        "A PNG of one digit: 28×28 pixels, grayscale, at most 1 MB",
        type=["png"],
        key="explain_upload",
        on_change=keep_upload,
        help="Any other size works too if you tick the resize box below.",
    )
    st.checkbox(
        "Resize: crop, scale and centre my image like an MNIST digit",
        key="explain_resize",
        persist_state="session",
        help="Off: the image must already be 28×28. On: any size; the digit is cropped to its ink, scaled "
        "to fit 20×20 pixels and centred by its centre of mass, as MNIST was made.",
    )
    record = st.session_state.get(UPLOADED)
    if record is None:
        st.info("Upload a PNG of a handwritten digit, e.g. a screenshot.", icon=":material/upload_file:")
        return None
    try:
        if record["data"] is None:
            raise ImageError(record["error"])
        pixels = load_upload(record["data"], resize=st.session_state.explain_resize)
    except ImageError as error:
        st.error(f"Can't use {literal(record['name'])}: {error}.", icon=":material/image_not_supported:")
        return None
    resized = " (resized like MNIST)" if st.session_state.explain_resize else ""
    return Digit(pixels, f"{literal(record['name'], markdown=False)}{resized}", None)


# --- drawings ------------------------------------------------------------------------------


def load_canvas() -> tuple[Callable[..., Any] | None, str]:
    """(st_canvas, "") or (None, why it is unavailable)."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception as error:  # not installed, or broken with this Streamlit
        return None, f"{type(error).__name__}: {error}"
    return st_canvas, ""


def canvas_unavailable(reason: str) -> None:
    st.info(
        "Drawing needs the streamlit-drawable-canvas component, which does not work on this server "
        f"({reason}). Pick a test image or upload a PNG instead.",
        icon=":material/draw:",
    )


def drawn_digit() -> Digit | None:
    st_canvas, problem = load_canvas()
    if st_canvas is None:
        canvas_unavailable(problem)
        return None
    ss = st.session_state
    if CANVAS not in ss:  # the canvas is (re)appearing: start it from the student's last drawing
        ss[DRAWING_SHOWN] = ss.get(DRAWING)
    st.caption(
        "Draw one digit with the mouse, large and centred. Each stroke updates the explanation; the "
        "toolbar that appears when you point at the canvas undoes or clears."
    )
    try:
        result = st_canvas(
            stroke_width=STROKE,
            stroke_color="#ffffff",
            background_color="#000000",
            height=CANVAS_SIZE,
            width=CANVAS_SIZE,
            drawing_mode="freedraw",
            initial_drawing=ss.get(DRAWING_SHOWN),
            return_image_data=True,
            key=CANVAS,
        )
        image = result.image_data  # (280, 280, 4) RGBA, or None until the canvas sends a drawing
    except Exception as error:
        log.exception("the drawing canvas failed")
        canvas_unavailable(f"{type(error).__name__}: {error}")
        return None
    if image is not None:
        ss[DRAWING] = result.json_data
        try:
            ss[DRAWN] = preprocess_drawing(image)
        except ValueError:  # an empty canvas
            ss[DRAWN] = None
    pixels = ss.get(DRAWN)
    if pixels is None:
        st.info("Draw a digit on the black square.", icon=":material/draw:")
        return None
    return Digit(pixels, "Your drawing, centred and scaled like MNIST", None)


def chosen_digit() -> Digit | None:
    """The source picker and its input; the digit to explain, or None (with a message on screen)."""
    source = st.segmented_control(
        "Image to explain",
        list(SOURCES),
        format_func=SOURCES.get,
        required=True,
        key="explain_source",
        persist_state="session",
    )
    return {"test": test_digit, "upload": upload_digit, "draw": drawn_digit}[source]()
