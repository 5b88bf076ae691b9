"""render.figures: the PNG/SVG exports for slides (the files themselves, their caption, their cache), and
that every page offers them without rendering anything before a student asks."""

from __future__ import annotations

import io
import threading
import xml.etree.ElementTree as ET

import altair as alt
import numpy as np
import pytest
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager

from core.config import Config
from core.identity import TrainedModel
from core.train import EpochMetrics, new_model
from render import charts, figures
from tests.app.test_app import assert_clean, open_page
from ui import resources

SVG = "{http://www.w3.org/2000/svg}"


def history(epochs: int, planned: int | None = None, val_acc: float = 0.9612) -> tuple[EpochMetrics, ...]:
    planned = planned or epochs
    return tuple(EpochMetrics(e, planned, 0.5, 0.9, 0.4, val_acc, e * 0.1, 1e-3) for e in range(1, epochs + 1))


MODEL = figures.Settings(Config(), history(100))  # the seed's settings, trained to the end
PATTERN = np.sin(np.arange(784) / 37.0).reshape(28, 28) - 0.2  # a signed (28, 28) "eigenvector"


def pixel_figure(values=PATTERN, colours="diverging", title="Eigenvector #3 · λ 0.452", settings=MODEL):
    return figures.pixels(values, "eigenvector3", title, "Eigenvector 3 as a 28×28 image", settings, colours)


def texts(root: ET.Element) -> str:
    return " ".join(" ".join(t.itertext()) for t in root.iter(f"{SVG}text"))  # Vega's lines are <tspan>s


# --- what every figure says ----------------------------------------------------------------


def test_the_caption_states_the_models_settings():
    assert MODEL.caption() == (
        "Labels: target #6, threshold 0.40, inverse counted",
        "Training: weight decay 1, noise std 0.1, 100 epochs, full MNIST, d_hidden 64, seed 42; "
        "validation accuracy 96.1%",
    )
    config = Config(target_index=7, threshold=0.3, include_inverse=False, epochs=40, n_train=12_000, n_test=2_000)
    stopped = figures.Settings(config, history(4, 40))
    assert stopped.caption()[0] == "Labels: target #7, threshold 0.30, inverse ignored"
    assert (
        "4 of 40 epochs (stopped)" in stopped.caption()[1]
        and "first 12,000 train / 2,000 test images" in (stopped.caption()[1])
    )
    assert stopped.stem() == "bilinear-eigen-lab_target7_tau0.3_wd1_noise0.1_4ep_seed42", "as the model's download"
    labels = figures.Settings(config)  # the Label page: no model yet
    assert labels.caption() == ("Labels: target #7, threshold 0.30, inverse ignored (labels only, no model)",)
    assert labels.stem() == "bilinear-eigen-lab_target7_tau0.3_labels"
    grid = figures.Settings(Config(), (), varying=("threshold", "weight_decay"))  # a chart across the grid
    assert "threshold varies" in grid.caption()[0] and "weight decay varies" in grid.caption()[1]
    assert "validation accuracy" not in grid.caption()[1]
    assert grid.stem() == "bilinear-eigen-lab_target6_noise0.1_100ep_seed42"
    with_digit = figures.Settings.of(TrainedModel(new_model(Config()), Config(), (), "trained"), digit=1)
    assert with_digit.caption()[0] == "Labels: target #6 (a 1), threshold 0.40, inverse counted"
    assert with_digit.stem() == figures.Settings(Config(), ()).stem(), "the file name does not change"
    assert (
        pixel_figure().file_name("svg")
        == "bilinear-eigen-lab_target6_tau0.4_wd1_noise0.1_100ep_seed42_eigenvector3.svg"
    )


# --- pixel images ----------------------------------------------------------------------------


def test_the_svg_is_vector_art_with_one_cell_per_pixel_in_the_screens_colours_and_the_caption():
    svg = figures.render(pixel_figure(title="Top <eigenvector> & |cos| 0.92"), "svg").decode()
    root = ET.fromstring(svg)  # well-formed XML, the title's < & > escaped
    rects = list(root.iter(f"{SVG}rect"))
    cells = [r for r in rects if r.get("class") == "cell"]
    assert len(cells) == 784 and len([r for r in rects if r.get("class") == "bar"]) == figures.BAR_STEPS
    assert not list(root.iter(f"{SVG}image")), "no embedded bitmap"
    screen = charts.diverging_rgb(PATTERN)  # what the page shows
    assert [c.get("fill") for c in cells] == ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in screen.reshape(-1, 3)]
    assert int(cells[-1].get("x")) == 27 * figures.CELL, "row-major, CELL units per pixel"
    words = texts(root)
    assert "Top <eigenvector> & |cos| 0.92" in words and "Eigenvector 3 as a 28×28 image" in words
    assert "validation accuracy 96.1%" in words and "target #6" in words, "the caption, maybe wrapped"
    assert f"+{np.abs(PATTERN).max():.3g}" in words, "the colour bar's limits"
    assert root.find(f"{SVG}title").text.startswith("Top <eigenvector>")


def test_the_png_decodes_at_the_expected_size_with_the_screens_colours():
    layout = figures._layout(pixel_figure())
    image = Image.open(io.BytesIO(figures.render(pixel_figure(), "png")))
    s = figures.PNG_SCALE
    assert image.format == "PNG" and image.size == (layout.width * s, layout.height * s)
    assert 28 * figures.CELL * s >= 280, "each pixel a block, well above the screen's size"
    pixels = np.asarray(image.convert("RGB"))
    block = figures.CELL * s
    rows = layout.image_y * s + block // 2 + block * np.arange(28)  # the centre of every cell
    cols = layout.image_x * s + block // 2 + block * np.arange(28)
    assert np.array_equal(pixels[np.ix_(rows, cols)], charts.diverging_rgb(PATTERN))
    digit = np.arange(784, dtype=np.uint8).reshape(28, 28)  # a digit: grey levels, white ink
    pixels = np.asarray(Image.open(io.BytesIO(figures.render(pixel_figure(digit, "digit"), "png"))).convert("RGB"))
    assert np.array_equal(pixels[np.ix_(rows, cols)][..., 0], digit)


def matrix_figure(values: np.ndarray) -> figures.Figure:
    return figures.matrix(
        values, "B_true", "B: class 1", "the interaction matrix B", MODEL, ("unit (out)", "unit (in)")
    )


def test_a_matrix_heatmap_has_one_cell_per_entry_clipped_colours_indexed_axes_and_says_its_numbers():
    values = np.sin(np.arange(65 * 65) / 13.0).reshape(65, 65)
    values[64, 3] = 50.0  # a lone large entry (the constant 1, a bias): clipped, not washing out the rest
    figure = matrix_figure(values)
    limit = charts.clip_limit(values)
    assert limit < 1.01, "clipped at a quantile of |values|"
    root = ET.fromstring(figures.render(figure, "svg"))
    cells = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "cell"]
    assert len(cells) == 65 * 65
    colours = charts.diverging_rgb(values, limit)
    assert [c.get("fill") for c in cells] == ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in colours.reshape(-1, 3)]
    words = texts(root)
    assert f"≥ +{limit:.3g}" in words and "unit (out)" in words and "unit (in)" in words and " 64 " in words
    assert "B: class 1" in words and "validation accuracy 96.1%" in words
    assert "the interaction matrix B, 65×65" in figure.description
    assert "Largest entry +50 at row 64, column 3" in figure.description

    layout = figures._layout(figure, captioned=False)  # on screen: the caption and alt text are the page's
    assert not [t for t in layout.texts if t.text == "B: class 1"]
    image = Image.open(io.BytesIO(figures.heatmap_png(figure, 2)))
    assert image.size == (layout.width * 2, layout.height * 2)
    block = layout.cell * 2
    rows = layout.image_y * 2 + block // 2 + block * np.arange(65)
    cols = layout.image_x * 2 + block // 2 + block * np.arange(65)
    assert np.array_equal(np.asarray(image.convert("RGB"))[np.ix_(rows, cols)], colours)


def test_a_large_matrix_shows_its_first_block_and_its_bias_row_and_column():
    values = np.arange(1025 * 1025, dtype=float).reshape(1025, 1025)
    figure = matrix_figure(values)
    root = ET.fromstring(figures.render(figure, "svg"))
    assert len([r for r in root.iter(f"{SVG}rect") if r.get("class") == "cell"]) == 65 * 65
    assert "1024" in texts(root), "the last index labelled: the bias"
    assert "1025×1025, its first 64 and last rows and columns shown" in figure.description


# --- Altair charts ---------------------------------------------------------------------------


def test_a_chart_exports_to_svg_and_png_with_its_title_and_the_caption():
    chart = charts.training_curve(list(history(3)), "accuracy")
    figure = figures.chart(chart, "training_accuracy", "Training and validation accuracy per epoch", MODEL)
    root = ET.fromstring(figures.render(figure, "svg"))
    words = texts(root)
    assert "Training and validation accuracy per epoch" in words
    assert "Labels: target #6, threshold 0.40, inverse counted" in words and "validation accuracy 96.1%" in words
    assert float(root.get("width")) >= figures.CHART_WIDTH, "a chart drawn at the page's width gets a fixed one"
    png = Image.open(io.BytesIO(figures.render(figure, "png")))
    assert png.format == "PNG" and png.size[0] == pytest.approx(2 * float(root.get("width")), abs=2), "scale 2"
    assert chart.title is alt.Undefined and chart.width is alt.Undefined, "the chart on screen is not changed"


# --- one render per figure for the whole class -------------------------------------------------


def test_the_cache_renders_each_figure_once_and_stays_bounded(monkeypatch):
    calls = []
    monkeypatch.setattr(figures, "render", lambda figure, fmt: calls.append(fmt) or f"{fmt}".encode())
    cache = figures.ExportCache(max_entries=2)
    same = [pixel_figure() for _ in range(30)]  # 30 students, each with their own Figure of the same image
    threads = [threading.Thread(target=cache.get, args=(figure, "png")) for figure in same]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["png"], "rendered once, the others waited for it or found it"
    cache.get(pixel_figure(), "svg")
    cache.get(pixel_figure(PATTERN * 2), "png")  # another image: another entry; the oldest is dropped
    assert len(cache) == 2 and calls == ["png", "svg", "png"]
    cache.get(pixel_figure(settings=figures.Settings(Config(threshold=0.5), history(100))), "svg")
    assert len(calls) == 4, "another model's caption is another figure"


# --- the pages: every figure offered, nothing rendered before it is asked for ----------------

PAGE_DOWNLOADS = {  # page -> the keys of its "Download" popovers (ui.widgets.downloads)
    "app_pages/label.py": ["label_target", "label_histogram", "label_examples_1", "label_examples_0"],
    "app_pages/train.py": ["train_loss", "train_accuracy"],
    "app_pages/tensor.py": ["tensor_W_l", "tensor_W_r", "tensor_B", "tensor_test_images"],
    "app_pages/eigenvectors.py": [
        "eig_where",
        "eig_spectrum_top",
        "eig_images_top",
        "eig_spectrum_bottom",
        "eig_images_bottom",
        "eig_browse",
    ],
    "app_pages/explain.py": ["explain_input", "explain_contributions", "explain_images"],
    "app_pages/truncation.py": ["truncation_curve"],
}
COMPARE_TAB = ["eig_compare_bias_free", "eig_compare_augmented", "eig_compare_grid"]


@pytest.fixture
def deferred(monkeypatch):
    """{file name: the callable a download button registered}, and the number of renders so far."""
    registered: dict[str, object] = {}
    add = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        registered[file_name] = data_callable
        return add(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    renders = []
    render = figures.render
    monkeypatch.setattr(figures, "render", lambda figure, fmt: renders.append(figure.name) or render(figure, fmt))
    return registered, renders


def open_downloads(at, keys: list[str]) -> None:
    """Open the popovers (as a click on each would) and check their buttons are there."""
    for key in keys:
        assert f"download_{key}" not in at.session_state or not at.session_state[f"download_{key}"]
        at.session_state[f"download_{key}"] = True
    at.run()
    assert_clean(at)
    for key in keys:
        for fmt in ("png", "svg"):
            assert at.download_button(key=f"download_{key}_0_{fmt}"), f"{key}: no {fmt} button"


def test_every_page_offers_its_figures_and_renders_none_until_asked(deferred):
    registered, renders = deferred
    resources.figure_exports.clear()  # the server's cache, shared by the tests as by a class
    at = open_page("app_pages/label.py")
    for page, keys in PAGE_DOWNLOADS.items():
        at.switch_page(page).run()
        assert_clean(at)
        assert not [
            b.key for b in at.download_button if b.key.startswith("download_") and b.key[-4:] in ("_png", "_svg")
        ], f"{page}: the buttons appear only once their popover is opened"
        open_downloads(at, keys)
    at.session_state["eig_tab"] = "Compare weight decays"
    at.switch_page("app_pages/eigenvectors.py").run()
    open_downloads(at, COMPARE_TAB)
    assert renders == [], "nothing rendered while the pages ran, with every popover open"

    stem = "bilinear-eigen-lab_target6_tau0.4_wd1_noise0.1_100ep_seed42"  # the pretrained model
    assert f"{stem}_truncation_curve.svg" in registered and f"{stem}_input.png" in registered
    assert "bilinear-eigen-lab_target6_tau0.4_labels_target.png" in registered, "the Label page's: labels only"
    assert (
        "bilinear-eigen-lab_target6_tau0.4_wd0_noise0.1_100ep_seed42_top_eigenvector_bias_free_true_minus_false.png"
        in (registered)
    ), "each precomputed model of the compare row names its own settings"
    svg = registered[f"{stem}_truncation_curve.svg"]()  # the student presses the button
    assert renders == ["truncation_curve"] and "validation accuracy 96.6%" in svg.decode()
    assert "target #6 (a 1)" in svg.decode(), "the target's digit, read from MNIST"
    png = registered[f"{stem}_input.png"]()
    assert Image.open(io.BytesIO(png)).format == "PNG" and renders == ["truncation_curve", "input"]
    registered[f"{stem}_truncation_curve.svg"]()
    assert len(renders) == 2, "the second request comes from the server's cache"


def test_screen_png_is_the_screen_image_before_its_upscaling_encoded_once_per_content():
    values = np.linspace(-1, 1, 784).reshape(28, 28)
    figure = pixel_figure(values)
    first = figure.screen_png()
    assert pixel_figure(values.copy()).screen_png() is first, "equal pixels: the bytes encoded before"
    decoded = np.asarray(Image.open(io.BytesIO(first)))
    assert decoded.shape[:2] == (28, 28), "one PNG pixel per MNIST pixel"
    upscaled = decoded.repeat(figure.scale, axis=0).repeat(figure.scale, axis=1)  # the browser's pixelated scaling
    assert figure.scale > 1 and np.array_equal(upscaled, np.asarray(figure.screen()))
    assert pixel_figure(-values).screen_png() != first, "other pixels: another image"
