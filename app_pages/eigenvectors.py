"""Step 4 · Eigenvectors: decompose the interaction matrix and find the target in the weights (Figure 6)."""

import streamlit as st

from core import charts
from core.eigen import cos_with_centered_target, decompose, linear_term_image
from core.tensor import DIRECTIONS, augment, direction_matrix, interaction_matrices
from ui import models, resources, widgets

MAX_K = 8

widgets.page_intro(
    "Eigenvectors", ":material/insights:",
    "A symmetric matrix splits into orthogonal eigenvectors, each an input pattern the output responds to "
    "*quadratically*: positive eigenvalues push the output up, negative ones push it down. Mapped back "
    "through the embedding, each eigenvector is an image, and the top one is the target the labels were "
    "built from: the weights alone tell us what the model computes.",
    r"B = \sum_i \lambda_i\, v_i v_i^\top \;\Longrightarrow\; \tilde x^\top W_e'^\top B\, W_e' \tilde x "
    r"= \sum_i \lambda_i \,(u_i \cdot \tilde x)^2, \qquad u_i = W_e'^\top v_i",
)
widgets.model_badge()
trained = models.active()
H = trained.config.d_hidden
st.session_state.top_k = min(st.session_state.top_k, H + 1)  # another model may be smaller
st.session_state.eig_index = min(st.session_state.eig_index, H)

controls = st.columns([3, 2], vertical_alignment="bottom")
with controls[0]:
    direction = widgets.direction_picker("Interaction matrix", "direction", DIRECTIONS)
k = controls[1].slider("Eigenvectors shown at each end", 1, min(MAX_K, H + 1), key="top_k", persist_state="session")

aug = augment(trained.model)
B = direction_matrix(interaction_matrices(aug), direction)
eigen = decompose(B, aug.W_e)
images = eigen.images()
target = resources.mnist().train_x[trained.config.target_index]
cosines = cos_with_centered_target(eigen.pixel_vectors, target)  # (H+1,)


def eigen_captions(indices: list[int]) -> list[str]:
    return [f"#{i} · λ {eigen.eigenvalues[i]:.3f} · |cos| {cosines[i]:.2f}" for i in indices]


st.subheader("Eigenspectrum and the extreme eigenvectors")
for side, indices in (("top", list(range(k))), ("bottom", [H - i for i in range(k)])):
    chart_column, image_column = st.columns([2, 3], vertical_alignment="center")
    chart_column.altair_chart(charts.eigenspectrum(eigen.eigenvalues, k, side), width="stretch")
    with image_column:
        widgets.image_row([charts.diverging_image(images[i], scale=4) for i in indices], eigen_captions(indices),
                          width=124)
st.caption("Red < 0 < blue, each image on its own symmetric scale ±max|v|. An eigenvector's sign is arbitrary: "
           "only its pattern and |cos| carry meaning.")

st.subheader("Compare with the target")
columns = st.columns(4)
with columns[0]:
    st.image(charts.digit_image(target, scale=5), caption=f"Target: training image #{trained.config.target_index}")
with columns[1]:
    st.image(charts.diverging_image(images[0], scale=5), caption="Top eigenvector u₀ (784 pixels)")
with columns[2]:
    st.image(charts.diverging_image(linear_term_image(B, trained.model.W_e), scale=5),
             caption="Linear term 2·W_eᵀ B[:-1, -1]: what the biases add")
with columns[3]:
    st.metric("|cos(u₀, target − mean)|", f"{cosines[0]:.2f}", border=True,
              help="Cosine between the top eigenvector's pixels and the mean-centred target: 1 means the same "
                   "image up to sign and scale, 0 unrelated. The paper's Figure 6 shows the match by eye.")

st.subheader("Browse every eigenvector")
browse_column, heatmap_column = st.columns([1, 2])
with browse_column:
    index = st.slider("Eigenvector index (0 = largest eigenvalue)", 0, H, key="eig_index", persist_state="session")
    st.metric("Eigenvalue λ", f"{eigen.eigenvalues[index]:.4f}")
    st.metric("|cos| with the centred target", f"{cosines[index]:.2f}")
heatmap_column.altair_chart(charts.pixel_heatmap(images[index], f"Eigenvector #{index} in pixel space (hover me)"),
                            width="content")

widgets.code_expander(augment, interaction_matrices, direction_matrix, decompose, linear_term_image,
                      cos_with_centered_target)
