"""Step 6 · Truncation: accuracy when each interaction matrix keeps only its top-k eigenvectors (§4.3's claim)."""

import streamlit as st

from core.truncation import cumulative_forms, hidden_augmented, order_by_magnitude, smallest_k_within, truncation_curves
from ui import charts, models, resources, widgets

TOLERANCE = 0.005  # "as good as the full model": within half a percentage point

widgets.page_intro(
    "Truncation",
    ":material/content_cut:",
    "Keep only the k eigenvectors with the largest |λ| of each interaction matrix, throw the rest away, and "
    "classify all 10 000 test images again, for every k. If the paper is right that a handful of eigenvectors "
    "carry the computation, accuracy reaches the full model's within a few eigenvectors out of 65.",
    r"B^{(k)} = \sum_{i \,\in\, \text{top-}k\ |\lambda|} \lambda_i\, v_i v_i^\top, \qquad "
    r"\text{out}^{(k)}(x) = \sum_{i \,\in\, \text{top-}k\ |\lambda|} \lambda_i\, (v_i \cdot \tilde h)^2, "
    r"\quad \tilde h = W_e' \tilde x",
)
widgets.model_badge()
trained = models.active()
curves = resources.truncation(trained.model_id, trained)  # cached per model id
n_all = int(curves.k[-1])

st.subheader("Accuracy against the number of eigenvectors kept")
st.altair_chart(
    charts.truncation_curve(
        curves.k, {"class_logits": curves.class_logits, "true_minus_false": curves.true_minus_false}, curves.full_model
    ),
    width="stretch",
)
st.caption(
    f"Blue: B₀ and B₁ (one per class) each keep their own top-k; predict the larger truncated logit. "
    f"Orange: B₁ − B₀ keeps its top-k; predict class 1 when the truncated form is > 0. "
    f"Dashed: the full model. All {curves.n_images:,} test images, labelled by the model's own rule; "
    "hover for values."
)

columns = st.columns(3)
columns[0].metric(
    "Full model (k = all)",
    f"{curves.full_model:.2%}",
    border=True,
    help=f"Its own forward pass: with all {n_all} eigenvectors both truncations equal the model exactly.",
)
for column, (name, mode) in zip(
    columns[1:], (("each class logit", "class_logits"), ("True − False", "true_minus_false")), strict=True
):
    k_needed = smallest_k_within(curves, mode, TOLERANCE)
    column.metric(
        f"Eigenvectors needed, {name}",
        "never" if k_needed is None else f"{k_needed} of {n_all}",
        border=True,
        help=f"The fewest eigenvectors (largest |λ| first) whose accuracy is within "
        f"{TOLERANCE:.1%} of the full model's.",
    )

st.subheader("Why the curve is flat at k = 1")
_, test_labels = resources.labels(trained.config)
share_true, detail = widgets.fraction_true(test_labels)
st.markdown(
    "With a single eigenvector the True − False form is one term, λ(v·h̃)², for the eigenvalue λ of largest |λ|. "
    "A square is never negative, so the term has the sign of λ for **every** image: the model answers *true* for "
    "all of them if λ > 0 and *false* for all of them if λ < 0 (a tie goes to class 0). A constant answer scores "
    f"exactly the share of that class: here {share_true} of the test images are labelled true ({detail}), and "
    f"k = 1 gives {curves.true_minus_false[1]:.1%}. The per-class curve compares two one-term forms, one per "
    f"class, which does no better here ({curves.class_logits[1]:.1%}). Only once the kept terms can change the "
    "sign of the output from one image to the next, with eigenvalues of both signs, does the accuracy climb."
)

widgets.code_expander(truncation_curves, order_by_magnitude, hidden_augmented, cumulative_forms)
