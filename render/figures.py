"""Figures for slides: every chart and pixel image of the app as PNG and SVG, captioned with the settings.

No Streamlit here (ui.widgets.downloads places the buttons): a `Figure` holds what a page already
drew (an Altair chart, or a (28, 28) array with its colour map) and its texts; `render` turns it
into file bytes, and only when a student asks for them. Charts go through vl-convert (the Vega-Lite
compiler in Rust: no browser); pixel images are drawn here, each MNIST pixel a CELL × CELL block,
with `render.charts.diverging_rgb`, the colours of the image on screen, so a download matches it exactly.
The SVG is real vector art: one <rect> per pixel and per colour-bar step, and text.

Every exported figure carries `settings_caption`: the labelling rule, the training settings and the
validation accuracy of the model it shows, so a slide says which model it came from.
"""

from __future__ import annotations

import hashlib
import textwrap
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from io import BytesIO
from typing import TYPE_CHECKING, Any, Literal
from xml.sax.saxutils import escape, quoteattr

import altair as alt
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.config import N_TEST_MNIST, Config
from render import charts

if TYPE_CHECKING:
    from core.identity import TrainedModel
    from core.train import EpochMetrics

Format = Literal["png", "svg"]
Colours = Literal["diverging", "digit"]  # charts.diverging_image (RdBu, centred at 0) or charts.digit_image
MIME: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml"}

CELL = 12  # SVG units per MNIST pixel: the image is 336 wide
PNG_SCALE = 2  # PNG pixels per SVG unit (a 672-pixel-wide image), as vl-convert's scale=2 for charts
BAR_STEPS = 56  # colour-bar steps, 6 units each along the image's 336
CHART_WIDTH = 560  # exported width of a chart the app draws at the container's width
FONT_FAMILY = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"
TEXT, MUTED = "#0f172a", "#475569"  # the app's caption colour (7.6:1 on white)


# --- what a figure shows, and of which model -------------------------------------------------


def settings_caption(
    config: Config,
    history: Sequence[EpochMetrics] | None = None,
    varying: Collection[str] = (),
    digit: int | None = None,
) -> tuple[str, ...]:
    """The lines under every exported figure's title: the labelling rule, then (for a model) its training.

    `history` None: the figure shows labels only, no model. An empty history: a model whose accuracy is
    unknown. `varying` names Config fields the figure itself varies (the grid's threshold, weight decay).
    `digit`: the target image's MNIST label, where the page knows it.
    """

    def setting(name: str, text: str) -> str:
        return f"{name.replace('_', ' ')} varies" if name in varying else text

    labels = ", ".join(
        (
            f"target #{config.target_index}" + ("" if digit is None else f" (a {digit})"),
            setting("threshold", f"threshold {config.threshold:.2f}"),
            "inverse counted" if config.include_inverse else "inverse ignored",
        )
    )
    if history is None:
        return (f"Labels: {labels} (labels only, no model)",)
    done = history[-1].epoch if history else config.epochs
    epochs = f"{config.epochs} epochs" if done == config.epochs else f"{done} of {config.epochs} epochs (stopped)"
    data = (
        f"first {config.n_train:,} train / {config.n_test or N_TEST_MNIST:,} test images"
        if config.n_train
        else "full MNIST"
    )
    training = ", ".join(
        (
            setting("weight_decay", f"weight decay {config.weight_decay:g}"),
            f"noise std {config.noise_std:g}",
            epochs,
            data,
            f"d_hidden {config.d_hidden}",
            f"seed {config.seed}",
        )
    )
    accuracy = f"; validation accuracy {history[-1].val_acc:.1%}" if history else ""
    return (f"Labels: {labels}", f"Training: {training}{accuracy}")


def file_stem(config: Config, epochs_done: int | None = None, varying: Collection[str] = ()) -> str:
    """A file name (without extension) that says what produced a figure: the model's settings, or with
    `epochs_done` None the labelling rule alone. Settings in `varying` are left out."""
    parts = ["bilinear-eigen-lab", f"target{config.target_index}"]
    if "threshold" not in varying:
        parts.append(f"tau{config.threshold:g}")
    if epochs_done is None:
        return "_".join([*parts, "labels"])
    if "weight_decay" not in varying:
        parts.append(f"wd{config.weight_decay:g}")
    parts += [f"noise{config.noise_std:g}", f"{epochs_done}ep", f"seed{config.seed}"]
    return "_".join(parts)


@dataclass(frozen=True)
class Settings:
    """What produced a figure: a Config, and the history of the model trained with it (None: labels only)."""

    config: Config
    history: tuple[EpochMetrics, ...] | None = None
    varying: tuple[str, ...] = ()  # Config fields the figure varies itself
    digit: int | None = None  # the target's MNIST label (ui.resources.settings fills it in)

    @classmethod
    def of(cls, trained: TrainedModel, digit: int | None = None) -> Settings:
        return cls(trained.config, trained.history, digit=digit)

    def caption(self) -> tuple[str, ...]:
        return settings_caption(self.config, self.history, self.varying, self.digit)

    def stem(self) -> str:
        done = None if self.history is None else (self.history[-1].epoch if self.history else self.config.epochs)
        return file_stem(self.config, done, self.varying)


@dataclass(frozen=True, eq=False)
class Figure:
    """One chart or one pixel image as a page draws it, with what its exported file says about it.

    Holds references only (the chart, the array): building one costs nothing, rendering happens in `render`.
    """

    name: str  # what it is, in the file name: "eigenvector3_bias_free_true_minus_false"
    title: str  # the exported figure's title (an image's caption on screen)
    settings: Settings
    chart: alt.TopLevelMixin | None = None
    pixels: Any = None  # (28, 28): float (diverging) or uint8 (digit), numpy or a CPU tensor
    colours: Colours = "diverging"
    description: str = ""  # an image's alt text: under the title, and the SVG's <desc>
    scale: int = 4  # screen pixels per MNIST pixel, for `screen`
    axes: tuple[str, str] | None = None  # a matrix heatmap's (row, column) titles; None: a 28×28 image
    cell: int = CELL  # SVG units per pixel or matrix entry

    @cached_property
    def spec(self) -> str:
        """A chart's Vega-Lite JSON as exported (`chart_spec`), built once per figure."""
        return chart_spec(self)

    def file_name(self, fmt: Format) -> str:
        return f"{self.settings.stem()}_{self.name}.{fmt}"

    def screen(self) -> Image.Image:
        """The image as the page shows it (render.charts' renderers at `scale`)."""
        return _screen_image(self.colours, self.pixels, self.scale)

    def screen_png(self) -> bytes:
        """The image the page sends: one PNG pixel per MNIST pixel, which the browser draws at the figure's
        width with nearest-neighbour scaling (ui.widgets.STYLE, `image-rendering: pixelated`), i.e. exactly
        `screen`. Encoded once per content and colours (`_screen_png`): the pages draw the same digits and
        eigenvectors on every run. A new image (a new model's eigenvectors) costs 0.3 ms to encode at 28×28
        against 1.1 ms upscaled 3× and 2.5 ms 6× (issue 14: 30 students opening a page at once)."""
        values = self.pixels.detach().cpu().numpy() if hasattr(self.pixels, "detach") else np.asarray(self.pixels)
        values = np.ascontiguousarray(values)
        return _screen_png(self.colours, values.tobytes(), values.dtype.str, values.shape)


def _screen_image(colours: Colours, pixels: Any, scale: int) -> Image.Image:
    if colours == "digit":
        return charts.digit_image(pixels, scale=scale)
    return charts.diverging_image(pixels, scale=scale)


@lru_cache(maxsize=4096)  # ~2.5 KB each: at most ~10 MB
def _screen_png(colours: Colours, data: bytes, dtype: str, shape: tuple[int, ...]) -> bytes:
    buffer = BytesIO()
    _screen_image(colours, np.frombuffer(data, dtype=dtype).reshape(shape), 1).save(buffer, format="PNG")
    return buffer.getvalue()


def chart(chart: alt.TopLevelMixin, name: str, title: str | None, settings: Settings) -> Figure:
    """A figure of an Altair chart, exported with `title` (None: the chart's own) and the settings as subtitle."""
    if title is None:
        own = chart.title
        title = own if isinstance(own, str) else str(getattr(own, "text", "") or "")
    return Figure(name, title, settings, chart=chart)


def matrix(
    values: Any, name: str, title: str, what: str, settings: Settings, axes: tuple[str, str], cell: int = 5
) -> Figure:
    """A figure of a matrix as a heatmap image (`heatmap_png` on screen): RdBu centred at 0, clipped at
    charts.clip_limit, with a colour bar and indexed axes titled `axes` (rows, columns); `cell` SVG units
    (screen pixels) per entry. A matrix larger than charts.MATRIX_MAX_SIZE shows charts.shown_block.
    Its alt text, built here from `what` it shows, gives the size, the colour scale and the largest entry:
    what a student would otherwise hover for."""
    rows, cols, block = charts.shown_block(values)
    shape = charts._array(values).shape
    limit = charts.clip_limit(block)
    r, c = np.unravel_index(int(np.abs(block).argmax()), block.shape)
    shown = "" if block.shape == shape else f", its first {len(rows) - 1} and last rows and columns shown"
    description = (
        f"Heatmap of {what}, {shape[0]}×{shape[1]}{shown}: {axes[0]} down, {axes[1]} across; red negative, "
        f"white zero, blue positive, full colour at ±{limit:.3g} and beyond. Largest entry "
        f"{block[r, c]:+.3g} at row {rows[r]}, column {cols[c]}."
    )
    return Figure(name, title, settings, pixels=values, description=description, axes=axes, cell=cell)


def pixels(
    values: Any,
    name: str,
    title: str,
    description: str,
    settings: Settings,
    colours: Colours = "diverging",
    scale: int = 4,
) -> Figure:
    """A figure of a 28×28 image (or a 28-high strip of them): `title` is its caption on screen and
    `description` its alt text."""
    return Figure(name, title, settings, pixels=values, colours=colours, description=description, scale=scale)


# --- rendering -----------------------------------------------------------------------------


def render(figure: Figure, fmt: Format) -> bytes:
    """The figure as a PNG or SVG file (the work itself, uncached: see ExportCache)."""
    if figure.chart is not None:
        return _render_chart(figure.spec, fmt)
    return pixel_png(figure) if fmt == "png" else pixel_svg(figure).encode()


def chart_spec(figure: Figure) -> str:
    """The chart's Vega-Lite JSON as exported: the figure's title, the settings as subtitle, a fixed
    width where the app lets the page's width decide. The chart on screen is not changed (a copy)."""
    fixed_width = {"width": CHART_WIDTH} if figure.chart.width is alt.Undefined else {}
    exported = figure.chart.properties(  # one copy of the chart, with its data
        title=alt.TitleParams(
            text=textwrap.wrap(figure.title, 70) or [""],
            subtitle=[line for text in figure.settings.caption() for line in textwrap.wrap(text, 95)],
            anchor="start",
            subtitleColor=MUTED,
            subtitlePadding=6,
            offset=12,
        ),
        **fixed_width,
    )
    return exported.to_json(validate=False)  # valid: the page has just drawn it


def _render_chart(spec: str, fmt: Format) -> bytes:
    import vl_convert  # imported on the first export: nothing is loaded before a student asks

    if fmt == "png":
        return vl_convert.vegalite_to_png(spec, scale=PNG_SCALE)
    return vl_convert.vegalite_to_svg(spec).encode()


Anchor = Literal["ls", "lm", "rm", "ms"]  # Pillow's anchors: left/right/middle, baseline/middle
SVG_ANCHOR: dict[str, str] = {
    "ls": "",
    "lm": ' dominant-baseline="middle"',
    "rm": ' text-anchor="end" dominant-baseline="middle"',
    "ms": ' text-anchor="middle"',
}


@dataclass(frozen=True)
class _Text:
    text: str
    x: float
    y: float
    size: int
    bold: bool = False
    colour: str = TEXT
    anchor: Anchor = "ls"  # where (x, y) is on the text: "lm" for colour-bar labels, "rm" for row indices
    vertical: bool = False  # turned a quarter anticlockwise about (x, y): a matrix's row title


@dataclass(frozen=True)
class _Layout:
    """Where everything goes, in SVG units; the PNG draws the same at PNG_SCALE."""

    width: int
    height: int
    image_x: int
    image_y: int
    bar_x: int
    cell: int  # units per pixel or matrix entry
    texts: tuple[_Text, ...]
    rgb: np.ndarray  # (rows, columns, 3) uint8, the image's colours
    bar_rgb: np.ndarray  # (BAR_STEPS, 3) uint8, top to bottom

    BAR_WIDTH = 16

    @property
    def image_height(self) -> int:
        """The image's own height in units (the colour bar's too)."""
        return self.rgb.shape[0] * self.cell


def _wrap(text: str, width: int, size: int, bold: bool = False) -> list[str]:
    """Lines of at most `width` units, at an average glyph width of 0.58 em (0.64 bold)."""
    return textwrap.wrap(text, max(12, int(width / (size * (0.64 if bold else 0.58)))))


def _ticks(indices: np.ndarray) -> list[tuple[int, int]]:
    """(position, index) of the labelled rows or columns of a heatmap: every eighth of them and the last
    (the bias), as the interactive chart labels them."""
    every, last = max(1, len(indices) // 8), int(indices[-1])
    return [(k, int(i)) for k, i in enumerate(indices) if i % every == 0 or i == last]


def _layout(figure: Figure, captioned: bool = True) -> _Layout:
    """The figure's geometry; `captioned` False leaves out the title, description and settings (on screen
    they are the image's caption and alt text)."""
    margin, cell = 16, figure.cell
    values = charts._array(figure.pixels)  # float64, from numpy or a tensor
    if figure.axes is None:  # a 28×28 image, or a strip of them side by side (core.snapshot.strip_pixels)
        values, rows, cols = values.reshape(28, -1), None, None
    else:
        rows, cols, values = charts.shown_block(values)
    if figure.colours == "digit":  # white ink on black, 0..255, as charts.digit_image
        grey = np.clip(values, 0, 255).round().astype(np.uint8)
        rgb = np.repeat(grey[..., None], 3, axis=-1)
        steps = np.linspace(255, 0, BAR_STEPS).round().astype(np.uint8)
        bar_rgb = np.repeat(steps[:, None], 3, axis=-1)
        ticks = ("255 (ink)", "", "0")
    else:  # the screen's colours: RdBu, white at 0, full colour at ±max|v| (a matrix: ± its clip limit)
        vmax = charts.symmetric_limit(values) if figure.axes is None else charts.clip_limit(values)
        rgb = charts.diverging_rgb(values, vmax)
        bar_rgb = charts.diverging_rgb(np.linspace(vmax, -vmax, BAR_STEPS), vmax)
        clipped = vmax < charts.symmetric_limit(values)
        ticks = (f"{'≥ ' if clipped else ''}+{vmax:.3g}", "0", f"{'≤ ' if clipped else ''}−{vmax:.3g}")
    width_units, height_units = rgb.shape[1] * cell, rgb.shape[0] * cell
    image_x = margin + (0 if rows is None else 46)  # a matrix: its row title and row indices on the left
    bar_x = image_x + width_units + 14
    width = bar_x + _Layout.BAR_WIDTH + 6 + 78 + margin
    texts: list[_Text] = []
    y = margin - 4
    blocks = [(figure.title, 15, True, TEXT), (figure.description, 12, False, TEXT)] if captioned else []
    blocks += [(line, 12, False, MUTED) for line in figure.settings.caption()] if captioned else []
    for text, size, bold, colour in blocks:
        for line in _wrap(text, width - 2 * margin, size, bold):
            y += round(size * 1.35)
            texts.append(_Text(line, margin, y, size, bold, colour))
        y += 4
    if figure.axes is not None:  # the column title and indices above, the row title and indices left
        row_title, col_title = figure.axes
        y += 18
        texts.append(_Text(col_title, image_x + width_units / 2, y, 12, colour=MUTED, anchor="ms"))
        y += 14
        texts += [_Text(str(i), image_x + (k + 0.5) * cell, y, 10, colour=MUTED, anchor="ms") for k, i in _ticks(cols)]
        y -= 4
        middle = y + 10 + height_units / 2
        texts.append(_Text(row_title, margin + 10, middle, 12, colour=MUTED, anchor="ms", vertical=True))
        texts += [
            _Text(str(i), image_x - 4, y + 10 + (k + 0.5) * cell, 10, colour=MUTED, anchor="rm")
            for k, i in _ticks(rows)
        ]
    image_y = y + 10
    label_x = bar_x + _Layout.BAR_WIDTH + 6
    for label, at in zip(ticks, (image_y + 6, image_y + height_units / 2, image_y + height_units - 6), strict=True):
        if label:
            texts.append(_Text(label, label_x, at, 12, colour=MUTED, anchor="lm"))
    return _Layout(width, image_y + height_units + margin, image_x, image_y, bar_x, cell, tuple(texts), rgb, bar_rgb)


def _hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def pixel_svg(figure: Figure) -> str:
    """A pixel or matrix figure as SVG: one <rect class="cell"> per pixel or entry, one <rect class="bar">
    per colour-bar step, the title, the description, the settings and a matrix's axes as <text>; the title
    and alt text for screen readers."""
    layout = _layout(figure)
    height, cell = layout.image_height, layout.cell
    step = height / BAR_STEPS
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{layout.width}" height="{layout.height}" '
        f'viewBox="0 0 {layout.width} {layout.height}" role="img" aria-labelledby="title desc">',
        f'<title id="title">{escape(figure.title)}</title>',
        f'<desc id="desc">{escape(" ".join([figure.description, *figure.settings.caption()]).strip())}</desc>',
        f'<rect width="{layout.width}" height="{layout.height}" fill="white"/>',
        f'<g shape-rendering="crispEdges" transform="translate({layout.image_x},{layout.image_y:g})">',
    ]
    out += [
        f'<rect class="cell" x="{c * cell}" y="{r * cell}" width="{cell}" height="{cell}" fill="{_hex(colour)}"/>'
        for r, row in enumerate(layout.rgb)
        for c, colour in enumerate(row)
    ]
    out.append(f'</g><g shape-rendering="crispEdges" transform="translate({layout.bar_x},{layout.image_y:g})">')
    out += [
        f'<rect class="bar" x="0" y="{i * step:g}" width="{_Layout.BAR_WIDTH}" height="{step:g}" '
        f'fill="{_hex(colour)}"/>'
        for i, colour in enumerate(layout.bar_rgb)
    ]
    out.append(f'<rect x="0" y="0" width="{_Layout.BAR_WIDTH}" height="{height}" fill="none" stroke="{MUTED}"/>')
    out.append(f"</g><g font-family={quoteattr(FONT_FAMILY)}>")
    for t in layout.texts:
        attributes = f'x="{t.x:g}" y="{t.y:g}" font-size="{t.size}" fill="{t.colour}"'
        if t.bold:
            attributes += ' font-weight="bold"'
        attributes += SVG_ANCHOR[t.anchor]
        if t.vertical:
            attributes += f' transform="rotate(-90 {t.x:g} {t.y:g})"'
        out.append(f"<text {attributes}>{escape(t.text)}</text>")
    out.append("</g></svg>")
    return "\n".join(out)


FONT_FILES = {  # the first one installed; Pillow's own font lacks Greek letters and the minus sign
    False: ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf"),
    True: ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "Arial Bold.ttf"),
}
ASCII = str.maketrans(
    {"−": "-", "×": "x", "λ": "lambda ", "τ": "tau", "σ": "sigma", "·": "-", "′": "'", "≥": ">=", "≤": "<="}
)


@cache
def _font(size: int, bold: bool) -> tuple[ImageFont.FreeTypeFont, bool]:
    """(font, whether it has the app's Greek letters and signs): a system font, else Pillow's own."""
    for name in FONT_FILES[bold]:
        try:
            return ImageFont.truetype(name, size), True
        except OSError:
            continue
    return ImageFont.load_default(size), False


def _drawable(text: str, full: bool) -> str:
    """Text the font can draw: without a full font, Greek letters and signs spelt in ASCII."""
    if full:
        return text
    return unicodedata.normalize("NFKD", text.translate(ASCII)).encode("ascii", "ignore").decode()


def _draw(layout: _Layout, s: int) -> Image.Image:
    """The layout drawn with Pillow at s pixels per unit."""
    height, cell = layout.image_height, layout.cell
    canvas = Image.new("RGB", (layout.width * s, layout.height * s), "white")
    block = layout.rgb.repeat(cell * s, axis=0).repeat(cell * s, axis=1)
    canvas.paste(Image.fromarray(block), (layout.image_x * s, round(layout.image_y * s)))
    bar = Image.fromarray(layout.bar_rgb[:, None, :]).resize((_Layout.BAR_WIDTH * s, height * s), Image.NEAREST)
    canvas.paste(bar, (layout.bar_x * s, round(layout.image_y * s)))
    draw = ImageDraw.Draw(canvas)
    top = round(layout.image_y * s)
    draw.rectangle(
        (layout.bar_x * s, top, (layout.bar_x + _Layout.BAR_WIDTH) * s - 1, top + height * s - 1),
        outline=MUTED,
        width=s,
    )
    for t in layout.texts:
        font, full = _font(t.size * s, t.bold)
        text = _drawable(t.text, full)
        if not t.vertical:
            draw.text((t.x * s, t.y * s), text, font=font, fill=t.colour, anchor=t.anchor)
            continue
        left, upper, right, lower = font.getbbox(text, anchor=t.anchor)
        mask = Image.new("L", (right - left, lower - upper))
        ImageDraw.Draw(mask).text((-left, -upper), text, font=font, fill=255, anchor=t.anchor)
        turned = mask.rotate(90, expand=True)  # anticlockwise: read from the bottom up
        canvas.paste(t.colour, (round(t.x * s + upper), round(t.y * s - turned.height / 2)), turned)
    return canvas


def _png(image: Image.Image) -> bytes:
    out = BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def pixel_png(figure: Figure) -> bytes:
    """The same figure as `pixel_svg`, drawn with Pillow at PNG_SCALE pixels per unit."""
    return _png(_draw(_layout(figure), PNG_SCALE))


def heatmap_png(figure: Figure, scale: int = 1) -> bytes:
    """A matrix figure as the page shows it: the heatmap, its axes and colour bar, `scale` screen pixels
    per unit, without the texts the page puts around it (the caption, the alt text)."""
    return _png(_draw(_layout(figure, captioned=False), scale))


# --- one export per figure for the whole class -------------------------------------------------


def digest(figure: Figure, fmt: Format) -> str:
    """What an export depends on, hashed: the format, the texts and the chart's spec or the pixels."""
    h = hashlib.sha256(fmt.encode())
    if figure.chart is not None:
        h.update(figure.spec.encode())  # holds the title and caption
    else:
        values = np.ascontiguousarray(charts._array(figure.pixels))
        h.update(repr((figure.colours, figure.title, figure.description, figure.settings.caption())).encode())
        h.update(values.tobytes())
    return h.hexdigest()


class ExportCache:
    """The last `max_entries` exports, shared by every session: 30 students downloading the same
    figure render it once. Keyed by `digest`, the content itself, so an entry is never stale (the
    same model, view and index give the same key; another threshold or model another one). Two
    requests for one figure at once render it once: the second waits for the first.
    """

    def __init__(self, max_entries: int = 32) -> None:
        self.max_entries = max_entries
        self._done: OrderedDict[str, bytes] = OrderedDict()
        self._making: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._done)

    def get(self, figure: Figure, fmt: Format) -> bytes:
        """The figure's file, rendered (module-level `render`) on the first request only."""
        key = digest(figure, fmt)
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]
            making = self._making.setdefault(key, threading.Lock())
        with making:
            with self._lock:
                if key in self._done:  # rendered by the request we waited for
                    return self._done[key]
            try:
                data = render(figure, fmt)
                with self._lock:
                    self._done[key] = data
                    while len(self._done) > self.max_entries:
                        self._done.popitem(last=False)
            finally:
                with self._lock:
                    self._making.pop(key, None)
        return data
