"""Step 5 · Explain: one input's output, split exactly into per-eigenvector contributions."""

import streamlit as st

from core import findings
from core.digits import load_upload, preprocess_drawing
from core.directions import DIRECTIONS
from core.explain import cancellation, explain, largest_contributions, margin, misclassified_indices, oriented_images
from render import charts, figures
from ui import inputs, models, resources, widgets

widgets.page_intro(
    "Explain one input",
    ":material/manage_search:",
    "Pick a digit, upload one or draw your own, and see the model's output for it split into one exact term per "
    "eigenvector. Because the model is a quadratic form, nothing is approximated: the terms add up to the logit "
    "to the last digit, so you can see which learnt patterns pushed this decision, and by how much.",
    r"\text{out}(x) = \tilde h^\top B\, \tilde h = \sum_i \lambda_i\, (v_i \cdot \tilde h)^2 "
    r"= \underbrace{h^\top B_{hh}\, h}_{\text{quadratic}} + \underbrace{2\, b_B \cdot h}_{\text{linear (biases)}} "
    r"+ \underbrace{c_B}_{\text{constant}}, \qquad \tilde h = W_e' \tilde x = [W_e x,\ 1]",
    lead="Pick, upload or draw a digit: the model's output for it splits exactly into one term per eigenvector.",
)
widgets.model_badge()
trained = models.active()
H = trained.config.d_hidden
settings = resources.settings(trained)  # what every figure's download states

input_column, split_column = st.columns([2, 3], gap="large")
with input_column:
    digit = inputs.chosen_digit()
    if digit is not None:
        margin = margin(trained.model, digit.pixels)
        verdict = f"the model says **{'true' if margin > 0 else 'false'}** (logit₁ − logit₀ = {margin:+.3f})"
        if digit.label is not None:
            verdict += " ✓" if (margin > 0) == bool(digit.label) else " ✗, a mistake"
        the_input = figures.pixels(
            digit.pixels,
            "input",
            digit.caption,
            f"The input, as the model sees it at 28×28 pixels: {digit.caption}",
            settings,
            colours="digit",
            scale=6,
        )
        widgets.image(the_input, width=168)
        st.markdown(f"What the model sees, 28×28: {verdict}.")
        widgets.downloads("explain_input", [the_input])

if digit is None:
    split_column.info("The explanation appears here once there is an image to explain.", icon=":material/info:")
else:
    with split_column:
        direction = widgets.direction_picker("Output to explain", "direction", "explain_direction")
        output = DIRECTIONS[direction].output
        e = explain(
            trained.model, digit.pixels, direction, resources.eigen(trained.model_id, trained, direction, "augmented")
        )
        by_degree = e.quadratic + e.linear + e.constant
        st.markdown(f"**The output {output}, split two exact ways**")
        top_row, bottom_row = st.columns(2), st.columns(2)
        top_row[0].metric(f"Model's forward pass: {output}", f"{e.model_output:.4f}", border=True)
        top_row[1].metric(
            f"Σ over all {H + 1} eigenvectors",
            f"{e.total:.4f}",
            border=True,
            help="Σᵢ λᵢ (vᵢ·h̃)², every eigenvector of the direction's interaction matrix.",
        )
        bottom_row[0].metric("Difference: Σ − model", f"{e.error:.1e}", border=True, help=e.exactness())
        bottom_row[1].metric(
            "Difference: parts − model",
            f"{by_degree - e.model_output:.1e}",
            border=True,
            help="(quadratic + linear + constant) minus the forward pass, in float64.",
        )
        st.latex(
            rf"{e.model_output:.4f} \;=\; \underbrace{{{e.quadratic:.4f}}}_{{\text{{quadratic}}}} "
            rf"\;+\; \underbrace{{({e.linear:.4f})}}_{{\text{{linear (biases)}}}} "
            rf"\;+\; \underbrace{{({e.constant:.4f})}}_{{\text{{constant}}}}"
        )
        st.caption(e.exactness())

if digit is not None:
    st.subheader("The largest contributions")
    shown = widgets.bounded_slider("Eigenvectors shown", 1, min(12, H + 1), "explain_top")
    top = largest_contributions(e, shown)
    images = oriented_images(e, top.indices)
    bar_column, image_column = st.columns([1, 1], vertical_alignment="center")
    with bar_column:
        widgets.chart(
            figures.chart(
                charts.contribution_bars(
                    top.indices,
                    e.contributions,
                    e.eigenvalues,
                    e.projections,
                    rest=e.total - float(top.values.sum()),
                    n_rest=H + 1 - shown,
                ),
                f"contributions_{direction}",
                f"The largest eigenvector contributions to {output} for one input ({digit.caption}): "
                f"{e.model_output:.4f} in all",
                settings,
            ),
            "explain_contributions",
        )
    with image_column:
        widgets.image_row(
            [figures.pixels(digit.pixels, "input", "the input", "The input digit, 28×28", settings, "digit", 3)]
            + [
                figures.pixels(
                    image,
                    f"eigenvector{i}_augmented_{direction}_flipped",
                    f"#{i} · λ {e.eigenvalues[i]:+.3f} · {c:+.2f}",
                    f"Eigenvector {i} ({widgets.DIVERGING}, flipped towards this input): eigenvalue "
                    f"{e.eigenvalues[i]:+.3f}, contributes {c:+.2f} to {output}",
                    settings,
                    scale=3,
                )
                for i, c, image in zip(top.indices, top.values, images, strict=True)
            ],
            width=84,
            key="explain_images",
        )
        st.caption(
            "Red < 0 < blue, each flipped towards this input.",
            help="Each eigenvector as an image, flipped so that this input's projection on it is positive: blue is "
            "where ink increases the term. Its contribution λᵢ(vᵢ·h̃)² has the sign of λᵢ, whatever the input.",
        )
    said = findings.contribution_finding(e.contributions, resources.bias_pair(trained, direction))
    st.info("\n\n".join(said.sentences()), icon=":material/balance:")

widgets.next_step(
    "app_pages/truncation.py", "Next: 6 · Truncation →", ":material/content_cut:", "How few eigenvectors does it need?"
)
widgets.code_expander(
    explain,
    largest_contributions,
    cancellation,
    findings.bias_pair,
    findings.contribution_finding,
    misclassified_indices,
    load_upload,
    preprocess_drawing,
)
