"""Step 3 · Tensor: fold the biases into the weights and check one matrix reproduces the logits."""

import streamlit as st
import torch

from core.config import N_TEST_MNIST
from core.data import to_float
from core.directions import DIRECTIONS
from core.lesson import tensor_question
from core.tensor import (
    augment,
    interaction_matrices,
    interaction_tensor,
    logit_check,
    quadratic_form,
    reconstruction_error,
)
from render import charts, figures
from ui import lesson, models, resources, widgets

BATCH = 256  # test images in the live check
SHOWN = 6  # of which the table lists the first few

widgets.page_intro(
    "Tensor",
    ":material/grid_on:",
    "Append a constant 1 to the input and to the hidden vector, and the biases become ordinary weights: "
    "the model is then *exactly* a quadratic form, one (d_hidden+1)² interaction matrix per class. "
    "Everything step 4 reads off the weights rests on this identity, so we check it live on real test images.",
    r"\text{logit}_a(x) + 1 \;=\; \tilde x^\top\, W_e'^\top B_a\, W_e'\, \tilde x, \qquad \tilde x = [x, 1]",
    lead="Append a constant 1 to the input and the model is *exactly* one matrix per "
    "class. Checked live on real test images below.",
)
widgets.model_badge()
trained = models.active()
tensor = interaction_tensor(trained.model)  # the bias-augmented weights and every B_a, float64
settings = resources.settings(trained)  # what every figure's download states
aug = tensor.weights
H = trained.config.d_hidden
mnist = resources.mnist()
start = st.session_state.proof_offset  # the check's first test image (its input is drawn in section 3)
if lesson.enabled():  # the question's answer is the check's error, which section 3 computes again in its fragment
    error = reconstruction_error(trained.model, to_float(mnist.test_x[start : start + BATCH]))
    lesson.gate(tensor_question(error, BATCH))

st.subheader("1 · Fold the biases into the weights")
st.markdown(
    "The extra hidden unit always equals 1, so each bilinear half computes its bias as a weight, "
    "and the head adds the constant product 1 · 1 once:"
)
(e_rows, e_cols), (u_rows, u_cols) = aug.W_e.shape, aug.W_u.shape
st.latex(
    rf"W_e' = \begin{{bmatrix}} W_e & 0 \\ 0 & 1 \end{{bmatrix}} \in \mathbb R^{{{e_rows} \times {e_cols}}}, "
    rf"\qquad W_u' = \begin{{bmatrix}} W_u & \mathbf 1 \end{{bmatrix}} \in \mathbb R^{{{u_rows} \times {u_cols}}}"
)
st.latex(
    rf"W_l' = \begin{{bmatrix}} W_l & b_l \\ 0 & 1 \end{{bmatrix}}, \quad "
    rf"W_r' = \begin{{bmatrix}} W_r & b_r \\ 0 & 1 \end{{bmatrix}} \in \mathbb R^{{{H + 1} \times {H + 1}}}, "
    r"\qquad (W_l' \tilde h) \odot (W_r' \tilde h) = "
    r"\begin{bmatrix} (W_l h + b_l) \odot (W_r h + b_r) \\ 1 \end{bmatrix}"
)
hover = st.toggle(
    "Hover for values",
    key="tensor_hover",
    persist_state="session",
    help="Draw the three heatmaps below as interactive charts that show each entry's value under the mouse "
    "(slower to draw); off, they are images with the same colours, axes and colour bar.",
)


def heatmap(matrix: torch.Tensor, name: str, key: str, title: str, what: str, axes: tuple[str, str], cell: int) -> None:
    """One matrix as a heatmap: an image drawn once per model, or with "Hover for values" the interactive chart."""
    figure = figures.matrix(matrix, name, title, what, settings, axes, cell)
    chart = charts.matrix_heatmap(matrix, title, *axes, size=cell * charts.MATRIX_MAX_SIZE) if hover else None
    widgets.heatmap(figure, trained.model_id, key, interactive=chart)


weights = (
    (aug.W_l, "W_l", "W_l′ (last column: b_l)", "the bias-augmented left weights W_l′, whose last column is b_l"),
    (aug.W_r, "W_r", "W_r′ (last column: b_r)", "the bias-augmented right weights W_r′, whose last column is b_r"),
)
for column, (matrix, name, title, what) in zip(st.columns(2), weights, strict=True):
    with column:
        heatmap(
            matrix, f"{name}_augmented", f"tensor_{name}", title, what, ("hidden unit (out)", "hidden unit (in)"), 5
        )

st.subheader("2 · Contract them into one interaction matrix per class")
st.latex(
    r"B_a = \tfrac12 \big(\hat B_a + \hat B_a^\top\big), \qquad "
    r"\hat B_a[i, j] = \sum_h W_u'[a, h]\; W_l'[h, i]\; W_r'[h, j]"
)
st.markdown(
    "Symmetrising changes no value of the quadratic form (xᵀBx = xᵀBᵀx) and makes B diagonalisable "
    "with real eigenvalues, which step 4 needs. In code, one `einsum`:"
)
widgets.source(interaction_matrices)


@st.fragment
def interaction_matrix() -> None:
    """The picked direction's B: picking another reruns only this part of the page."""
    direction = widgets.direction_picker("Show B for", "tensor_direction")
    description = DIRECTIONS[direction].description
    heatmap(
        tensor.direction(direction),
        f"B_{direction}",
        "tensor_B",
        f"B: {description}",
        f"the interaction matrix B of {description}",
        ("hidden unit", "hidden unit"),
        7,
    )


interaction_matrix()

st.subheader("3 · Check: the quadratic form is the logit")


@st.fragment
def check() -> None:
    """The live check on a batch of test images: another batch reruns only this part of the page."""
    start = st.number_input(
        "First test image",
        0,
        N_TEST_MNIST - BATCH,
        step=BATCH,
        key="proof_offset",
        persist_state="session",
        help=f"The check runs on {BATCH} consecutive test images.",
    )
    images, labels = mnist.test_x[start : start + BATCH], resources.labels(trained.config)[1][start : start + BATCH]
    error = reconstruction_error(trained.model, to_float(images))
    st.metric(
        f"Largest |x̃ᵀW_e′ᵀB_aW_e′x̃ − (logit_a + 1)|, {BATCH} test images × 2 classes",
        f"{error:.1e}",
        help="Computed in float64; anything near 1e-12 is rounding, so the identity is exact.",
    )
    widgets.image_row(
        [
            figures.pixels(
                images[i],
                f"test{start + i}",
                f"test #{start + i}",
                f"Test image #{start + i}, a handwritten {int(mnist.test_y[start + i])}, labelled "
                f"{'true' if labels[i] else 'false'}",
                settings,
                colours="digit",
                scale=2,
            )
            for i in range(SHOWN)
        ],
        width=56,
        key="tensor_test_images",
    )
    table = logit_check(trained.model, to_float(images[:SHOWN]).double(), labels[:SHOWN])
    st.dataframe(
        {"image": [f"test #{start + i}" for i in range(SHOWN)], **table},
        column_config={"max |difference|": st.column_config.NumberColumn(format="%.1e")},
        hide_index=True,
    )


check()

widgets.next_step(
    "app_pages/eigenvectors.py", "Next: 4 · Eigenvectors →", ":material/insights:", "Find the target in that matrix."
)
widgets.code_expander(
    augment,
    interaction_matrices,
    interaction_tensor,
    quadratic_form,
    reconstruction_error,
    logit_check,
    tensor_question,
)
