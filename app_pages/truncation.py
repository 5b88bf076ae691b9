"""Step 6 · Truncation: how many eigenvectors the model needs (§4.2's claim), and whether the top one
is enough (§4.3's)."""

import streamlit as st

from core import findings
from core.lesson import truncation_question
from core.truncation import (
    cumulative_forms,
    fit_thresholds,
    hidden_augmented,
    order_by_magnitude,
    smallest_k_within,
    truncation_curves,
)
from render import charts, figures
from ui import lesson, models, resources, widgets

TOLERANCE = 0.005  # "as good as the full model": within half a percentage point

widgets.page_intro(
    "Truncation",
    ":material/content_cut:",
    "Keep only the k eigenvectors with the largest |λ| of each interaction matrix, throw the rest away, and "
    "classify all 10 000 test images again, for every k. The paper finds for its 10-class model (§4.2) that a "
    "handful of eigenvectors carry the computation, and says here (§4.3) that the most positive eigenvector is "
    "sufficient: both are tested below on the model shown, each accuracy beside the constant answer's.",
    r"B^{(k)} = \sum_{i \,\in\, \text{top-}k\ |\lambda|} \lambda_i\, v_i v_i^\top, \qquad "
    r"\text{out}^{(k)}(x) = \sum_{i \,\in\, \text{top-}k\ |\lambda|} \lambda_i\, (v_i \cdot \tilde h)^2, "
    r"\quad \tilde h = W_e' \tilde x",
    lead="Keep only the k eigenvectors with the largest |λ|, classify the 10 000 test "
    "images again: how few does the model need?",
)
widgets.model_badge()
trained = models.active()
curves = resources.truncation(trained.model_id, trained)  # cached per model id
lesson.gate(truncation_question(curves, TOLERANCE))
n_all = int(curves.k[-1])

st.subheader("Accuracy against the number of eigenvectors kept")
widgets.chart(
    figures.chart(
        charts.truncation_curve(
            curves.k,
            {"class_logits": curves.class_logits, "true_minus_false": curves.true_minus_false},
            curves.full_model,
        ),
        "truncation_curve",
        f"Test accuracy with only the top-k eigenvectors kept (largest |λ| first), {curves.n_images:,} test images",
        resources.settings(trained),
    ),
    "truncation_curve",
)
st.caption(
    "Blue: each class logit truncated; orange: True − False; dashed: the full model.",
    help=f"Blue: B₀ and B₁ (one per class) each keep their own top-k; predict the larger truncated logit. "
    f"Orange: B₁ − B₀ keeps its top-k; predict class 1 when the truncated form is > 0. "
    f"Dashed: the full model. All {curves.n_images:,} test images, labelled by the model's own rule; "
    f"always answering {'true' if curves.constant_answer else 'false'} scores {curves.constant_baseline:.2%}; "
    "hover for values.",
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
        f"{TOLERANCE * 100:.1f} percentage points of the full model's.",
    )

st.subheader("What the curves say")
finding = findings.truncation_finding(curves, TOLERANCE)
columns = st.columns(2)
columns[0].metric(
    "Top eigenvector alone, threshold refit",
    f"{curves.top_only_calibrated:.2%}",
    delta=f"{(curves.top_only_calibrated - curves.full_model) * 100:+.1f} points vs the full model",
    delta_color="off",
    border=True,
    help="λ₀(v₀·h)² > θ: the most positive eigenvector of the bias-free True − False block, with the threshold θ "
    "refit on the model's training images (§4.3's claim). With the trained offset instead, λ₀(v₀·h)² + 2b·h + c > 0 "
    f"scores {curves.top_only:.2%}: c was fitted together with all the other terms.",
)
columns[1].metric(
    f"Constant answer: always {'true' if curves.constant_answer else 'false'}",
    f"{curves.constant_baseline:.2%}",
    border=True,
    help="The training set's majority answer for every test image: a score at or below this says nothing about "
    "the eigenvectors kept.",
)
said = finding.sentences()
st.markdown(f"- {said[0]}")  # the headline; the rest, and the caveats, on demand
widgets.why(
    "\n".join(f"- {sentence}" for sentence in said[1:])
    + "\n\nHere eigenvectors are ranked by |λ| (largest first), unlike the Eigenvectors page, whose “top” is the "
    "largest signed eigenvalue. A tie in a prediction goes to class 0, as torch's argmax does.",
    key="why_truncation",
)

widgets.next_step("app_pages/class_board.py", "Next: 7 · Class board →", ":material/groups:", "Compare with the room.")
widgets.code_expander(
    truncation_curves,
    order_by_magnitude,
    hidden_augmented,
    cumulative_forms,
    fit_thresholds,
    findings.truncation_finding,
    truncation_question,
)
