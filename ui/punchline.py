"""The lesson in one picture: the target beside the top eigenvector of the model's weights, and the verdict in
one line (issue 24: punchline first). Home opens with it and the Eigenvectors page starts with it, inside the
first screen at 1366×768, in projector mode too.

The headline is the one every page, the board and the lesson use: the top eigenvector of the bias-free block
of True − False (`HEADLINE`), its |cos| with the mean-centred target worded by core.findings.match_words. The
whole bias-augmented matrix's |cos| is shown beside it, labelled, so a student who reads either never meets two
stories. Nothing here computes: the numbers come from ui.resources' cached decomposition (core.eigen).
"""

from __future__ import annotations

import streamlit as st

from core import findings
from core.directions import DIRECTIONS
from core.identity import TrainedModel
from render import figures
from ui import resources, widgets

WHERE = {"bias_free": "bias-free block", "augmented": "bias-augmented B"}  # as the Eigenvectors page says
HEADLINE = findings.verdict_view()  # the direction and view of the verdict, everywhere (core.findings)
WIDTH = 150  # each image's width in screen pixels (twice in projector mode, never wider than its column)
TERMS = (
    "**Target**: the MNIST image the labels were built from; the model never saw it.  \n"
    "**Top eigenvector**: the input pattern that raises the model's *true − false* output most, read from the "
    "weights alone (the largest eigenvalue λ of its interaction matrix), drawn as 28×28 pixels: blue +, red −.  \n"
    "**|cos|**: how alike the two pictures are, from 0 (unrelated) to 1 (the same pattern), after subtracting "
    "the target's mean pixel.  \n"
    "**Bias-free block**: the interaction matrix without the row and column the biases add; the "
    "**bias-augmented** matrix keeps them (what the model computes exactly)."
)


def image_name(index: int, digit: int) -> str:
    """'image #6 (a 1)': a training image's number never reads as the digit it shows."""
    return f"image #{index} (a {digit})"


def verdict(trained: TrainedModel) -> tuple[str, str]:
    """(the one-line verdict, the labelled second number) for the model's headline eigenvector."""
    top = resources.top(trained, *HEADLINE)
    augmented = resources.top(trained, HEADLINE[0], "augmented")
    line = f"Top eigenvector vs target: |cos| **{top.cos:.2f}**, {findings.match_words(top.cos)}."
    return (
        line,
        f"{WHERE[HEADLINE[1]]} of {DIRECTIONS[HEADLINE[0]].name}; the bias-augmented matrix: |cos| {augmented.cos:.2f}",
    )


def show(trained: TrainedModel, key: str) -> None:
    """Target | top eigenvector | the verdict, side by side."""
    mnist = resources.mnist()
    index = trained.config.target_index
    digit = int(mnist.train_y[index])
    top = resources.top(trained, *HEADLINE)
    settings = figures.Settings.of(trained, digit)
    shown = [
        figures.pixels(
            mnist.train_x[index],
            "target",
            f"Target: {image_name(index, digit)}",
            f"The target: MNIST training {image_name(index, digit)}",
            settings,
            colours="digit",
            scale=6,
        ),
        figures.pixels(
            top.image,
            "top_eigenvector_bias_free_true_minus_false",
            f"Top eigenvector · λ {top.eigenvalue:+.3f}",
            f"Top eigenvector of the {WHERE[HEADLINE[1]]} of {DIRECTIONS[HEADLINE[0]].name} as a 28×28 image "
            f"({widgets.DIVERGING}): eigenvalue {top.eigenvalue:+.3f}, |cos| with the centred target {top.cos:.2f}",
            settings,
            scale=6,
        ),
    ]
    line, second = verdict(trained)
    projector = bool(st.session_state.get("projector"))  # two columns of images, the verdict in a narrower third
    with st.container(border=True, key=f"punchline_{key}"):
        columns = st.columns([1, 1, 1.6] if projector else [1, 1, 3], vertical_alignment="center")
        for column, figure in zip(columns, shown, strict=False):
            with column:
                widgets.image(figure, width=WIDTH)
        with columns[-1]:
            st.markdown(f"#### {line}", help=TERMS)
            st.caption(f"{widgets.badge_style(trained)[0]} · {second}")
            widgets.downloads(f"{key}_punchline", shown)
