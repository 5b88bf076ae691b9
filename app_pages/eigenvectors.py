"""Step 4 · Eigenvectors: decompose the interaction matrix and find the target in the weights (Figure 6).

Also the instant grid sliders (precomputed checkpoints, core.grid) and a view comparing the top
eigenvector across weight decays.
"""

import streamlit as st

from core import findings
from core.directions import DIRECTIONS, VIEWS
from core.eigen import cos_with_centered_target, decompose, linear_term_image, top_eigenvector
from core.grid import GRID_THRESHOLDS, GRID_WEIGHT_DECAYS, grid_config
from core.lesson import weight_decay_question
from core.spectrum import concentration_of
from render import charts, figures
from ui import lesson, links, models, punchline, resources, state, widgets

widgets.page_intro(
    "Eigenvectors",
    ":material/insights:",
    "A symmetric matrix splits into orthogonal eigenvectors, each an input pattern the output responds to "
    "*quadratically*: positive eigenvalues push the output up, negative ones push it down. Mapped back "
    "through the embedding, each eigenvector is an image. We look among them for the target the labels were "
    "built from, in the whole bias-augmented matrix and in its bias-free block: where it is there, the weights "
    "alone tell us what the model computes.",
    r"B = \sum_i \lambda_i\, v_i v_i^\top \;\Longrightarrow\; \tilde x^\top W_e'^\top B\, W_e' \tilde x "
    r"= \sum_i \lambda_i \,(u_i \cdot \tilde x)^2, \qquad u_i = W_e'^\top v_i",
    lead="Each eigenvector of the model's interaction matrix is an input pattern, read from the weights alone. "
    "Is the target among them?",
)
trained = models.active()
if not lesson.enabled():  # the lesson first: target, top eigenvector, verdict (in lesson mode: after the prediction)
    punchline.show(trained, "eig")
on_grid = models.grid_point(trained)
if on_grid is not None:  # the sliders show the active model whenever it is a precomputed one
    st.session_state.grid_threshold, st.session_state.grid_weight_decay = on_grid

# The sliders name the model on screen, or sit in a closed expander when it is not a precomputed one: they never
# show a τ and a weight decay that no model on the page has.
instant = (
    st.container(border=True)
    if on_grid is not None
    else st.expander("Instant models: show a precomputed one", icon=":material/bolt:", key="eig_instant")
)
with instant:
    st.markdown(
        "**Instant models**: 15 trained before class; move a slider to show one, on every page.",
        help="They have the paper's settings and vary only the threshold τ and the weight decay.",
    )
    columns = st.columns([2, 3, 2], vertical_alignment="bottom")
    columns[0].select_slider(
        "Threshold τ",
        GRID_THRESHOLDS,
        format_func="{:.2f}".format,
        key="grid_threshold",
        on_change=models.use_grid_point,
        persist_state="session",
        help="The labelling threshold the precomputed model was trained with.",
    )
    columns[1].select_slider(
        "Weight decay",
        GRID_WEIGHT_DECAYS,
        format_func="{:g}".format,
        key="grid_weight_decay",
        on_change=models.use_grid_point,
        persist_state="session",
        help="AdamW's weight decay the precomputed model was trained with (the paper: 1).",
    )
    if on_grid is None:
        columns[2].button(
            "Show this one",
            icon=":material/bolt:",
            key="grid_show",
            on_click=models.use_grid_point,
            help="Replace the model shown by the precomputed one the sliders select.",
        )
        st.caption("Settings off this grid train live on the Train page.")

if lesson.enabled():  # the question decomposes five precomputed models: only in lesson mode
    lesson.gate(
        weight_decay_question(
            resources.grid_decay_rows(st.session_state.grid_threshold), st.session_state.grid_threshold
        ),
        "this server lacks the precomputed models with weight decay 0 and 1 at this threshold",
    )
    punchline.show(trained, "eig")
H = trained.config.d_hidden
settings = resources.settings(trained)  # what every figure's download states
eigen_tab, compare_tab = st.tabs(list(state.EIGEN_TABS.values()), key="eig_tab", on_change="rerun")

with eigen_tab:
    if eigen_tab.open:  # only the open tab runs, so a slider move redraws one view
        controls = st.columns([3, 3, 2], vertical_alignment="bottom")
        with controls[0]:
            direction = widgets.direction_picker("Interaction matrix", "direction", "eig_direction")
        with controls[1]:
            view = widgets.view_picker("eig_matrix")
        augmented = resources.eigen(trained.model_id, trained, direction, "augmented")
        bias_free = resources.eigen(trained.model_id, trained, direction, "bias_free")
        eigen = bias_free if view == "bias_free" else augmented
        n = len(eigen.eigenvalues)  # H (bias-free) or H + 1 (augmented)
        with controls[2]:
            k = widgets.bounded_slider("Eigenvectors shown at each end", 1, min(state.TOP_K_MAX, n), "top_k")
        target = resources.mnist().train_x[trained.config.target_index]
        found = findings.target_finding(augmented, bias_free, target, DIRECTIONS[direction].name)

        st.subheader(f"{DIRECTIONS[direction].label}: both views, and what the biases add")
        free_top, aug_top = top_eigenvector(bias_free, target), top_eigenvector(augmented, target)
        name = DIRECTIONS[direction].name
        shown = [  # (pixels, file name, caption, what a screen reader hears); the target is in the punchline above
            *(
                figures.pixels(
                    top.image,
                    f"top_eigenvector_{view_name}_{direction}",
                    f"Top of the {where} · λ {top.eigenvalue:+.3f} · |cos| {top.cos:.2f}",
                    f"Top eigenvector of the {where} of {name} as a 28×28 image ({widgets.DIVERGING}): eigenvalue "
                    f"{top.eigenvalue:+.3f}, |cos| with the target {top.cos:.2f}",
                    settings,
                    scale=6,
                )
                for top, where, view_name in (
                    (free_top, "bias-free block", "bias_free"),
                    (aug_top, "bias-augmented B", "augmented"),
                )
                if view_name != "bias_free" or direction != punchline.HEADLINE[0]  # the punchline shows it
            ),
            figures.pixels(
                linear_term_image(augmented, trained.model.W_e),
                f"linear_term_{direction}",
                "Linear term 2·W_eᵀ B[:-1, -1]: what the biases add",
                f"The biases' linear term as a 28×28 image of pixel weights ({widgets.DIVERGING})",
                settings,
                scale=6,
            ),
        ]
        for cell, figure in zip(widgets.cells(len(shown)), shown, strict=True):
            with cell:
                widgets.image(figure, width=124)
        widgets.downloads("eig_where", shown)
        widgets.why(
            "\n".join(f"- {sentence}" for sentence in found.sentences())
            + "\n\n“Top” means the largest (most positive) eigenvalue, everywhere in this lab. |cos| is taken with the "
            f"mean-centred target: {findings.IS_TARGET:g} or more reads “is the target”, {findings.RESEMBLES:g} "
            "or more “resembles it”. Images are flipped towards the target (an eigenvector's sign is arbitrary).\n\n"
            + widgets.GLOSSARY,
            key="why_where",
        )

        st.subheader(f"Eigenspectrum of the {VIEWS[view].label.lower()} and its extreme eigenvectors")
        images = eigen.images()
        cosines = cos_with_centered_target(eigen.pixel_vectors, target)

        def eigen_captions(indices: list[int]) -> list[str]:
            return [f"#{i} · λ {eigen.eigenvalues[i]:.3f} · |cos| {cosines[i]:.2f}" for i in indices]

        def eigen_alts(indices: list[int]) -> list[str]:
            return [
                f"Eigenvector {i} of the {VIEWS[view].label.lower()} of {DIRECTIONS[direction].name} as a 28×28 "
                f"image ({widgets.DIVERGING}): eigenvalue {eigen.eigenvalues[i]:.3f}, |cos| with the target "
                f"{cosines[i]:.2f}"
                for i in indices
            ]

        for side, indices in (("top", list(range(k))), ("bottom", [n - 1 - i for i in range(k)])):
            chart_column, image_column = st.columns([2, 3], vertical_alignment="center")
            with chart_column:
                widgets.chart(
                    figures.chart(
                        charts.eigenspectrum(eigen.eigenvalues, k, side),
                        f"spectrum_{side}_{view}_{direction}",
                        f"{'Largest' if side == 'top' else 'Most negative'} eigenvalues of the "
                        f"{VIEWS[view].label.lower()} of {DIRECTIONS[direction].name}",
                        settings,
                    ),
                    f"eig_spectrum_{side}",
                )
            with image_column:
                widgets.image_row(
                    [
                        figures.pixels(images[i], f"eigenvector{i}_{view}_{direction}", caption, alt, settings)
                        for i, caption, alt in zip(indices, eigen_captions(indices), eigen_alts(indices), strict=True)
                    ],
                    width=124,
                    key=f"eig_images_{side}",
                )
        st.caption(concentration_of(eigen).sentence())
        widgets.why(
            f"{VIEWS[view].description}. Top: the largest eigenvalues; bottom: the most negative. Red < 0 < blue, "
            "each image on its own symmetric scale ±max|v|; only the pattern and |cos| carry meaning.",
            key="why_spectrum",
        )

        with st.expander("Why do the two spectra differ? The ± pair the biases can add", icon=":material/help:"):
            widgets.latex(
                r"B = \begin{bmatrix} B_{hh} & b \\ b^\top & c \end{bmatrix}, \qquad "
                r"R = \begin{bmatrix} a & \lVert b \rVert \\ \lVert b \rVert & c \end{bmatrix},\ "
                r"a = \hat b^\top B_{hh} \hat b, \qquad "
                r"\lambda_\pm(R) = \frac{a + c \pm \sqrt{(a - c)^2 + 4\,\lVert b \rVert^2}}{2}"
            )
            pair = resources.bias_pair(trained, direction)
            if pair is not None:
                st.markdown("\n".join(f"- {sentence}" for sentence in pair.sentences()))
            else:
                st.markdown("- This model's biases do not couple to the constant coordinate (b = 0): there is no pair.")

        if direction == "true":
            st.subheader("The authors' figure code: class 1 without its top eigenpair")
            code = findings.figure_code_finding(augmented, target)
            pair = [
                figures.pixels(
                    augmented.images()[0],
                    "eigenvector0_augmented_true",
                    f"Class 1, #0 · |cos| {code.top_cos:.2f} (dropped)",
                    f"Class 1's top eigenvector ({widgets.DIVERGING}), which the figure code drops: "
                    f"|cos| with the target {code.top_cos:.2f}",
                    settings,
                ),
                figures.pixels(
                    augmented.images()[1],
                    "eigenvector1_augmented_true",
                    f"Class 1, #1 · λ {code.next_eigenvalue:+.3f} · |cos| {code.next_cos:.2f}",
                    f"Class 1's second eigenvector ({widgets.DIVERGING}): eigenvalue {code.next_eigenvalue:+.3f}, "
                    f"|cos| with the target {code.next_cos:.2f}",
                    settings,
                ),
            ]
            pair_columns = st.columns([1, 1, 3], vertical_alignment="center")
            for column, figure in zip(pair_columns[:2], pair, strict=True):
                with column:
                    widgets.image(figure, width=112)
            with pair_columns[2]:
                st.markdown(
                    "The paper's text decomposes True − False; the script behind its Figure 6 decomposes class 1 "
                    "and skips the top eigenpair. " + " ".join(code.sentences())
                )
                widgets.downloads("eig_class1_pair", pair)

        st.subheader("Browse every eigenvector")

        @st.fragment
        def browse() -> None:
            """The index slider's part of the page: a step reruns only this (and the link), not the spectra."""
            browse_column, heatmap_column = st.columns([1, 2])
            with browse_column:
                index = widgets.bounded_slider(
                    f"Eigenvector index of the {VIEWS[view].label.lower()} (0 = largest eigenvalue)",
                    0,
                    n - 1,
                    "eig_index",
                )
                st.metric("Eigenvalue λ", f"{eigen.eigenvalues[index]:.4f}")
                st.metric("|cos| with the centred target", f"{cosines[index]:.2f}")
                hover = st.toggle(
                    "Hover for values",
                    key="eig_hover",
                    persist_state="session",
                    help="Draw the eigenvector as an interactive chart that shows each pixel's value under the "
                    "mouse (slower to draw); off, an image with the same colours and a colour bar.",
                )
            where = f"the {VIEWS[view].label.lower()} of {DIRECTIONS[direction].name}"
            numbers = f"eigenvalue {eigen.eigenvalues[index]:.4f}, |cos| with the target {cosines[index]:.2f}"
            figure = figures.pixels(
                images[index],
                f"eigenvector{index}_{view}_{direction}_heatmap",
                f"Eigenvector #{index} of {where} in pixel space: {numbers}",
                f"Eigenvector {index} of {where} as a 28×28 image ({widgets.DIVERGING}, full colour at ±max|v|, "
                f"the colour bar beside it): {numbers}",
                settings,
            )
            with heatmap_column:
                title = f"Eigenvector #{index} in pixel space (hover me)"
                chart = charts.pixel_heatmap(images[index], title) if hover else None
                widgets.heatmap(figure, trained.model_id, "eig_browse", interactive=chart)
            links.write()  # the address follows the index, on a partial rerun too

        browse()

with compare_tab:
    if compare_tab.open:
        threshold = st.session_state.grid_threshold
        st.markdown(
            f"The top **True − False** eigenvector of the five precomputed models with threshold τ = {threshold:.2f}, "
            "from no weight decay to the strongest (change τ with the slider above), in both views."
        )
        target_index = state.DEFAULTS.target_index  # every precomputed model has the paper's target
        target = resources.mnist().train_x[target_index]
        shown = []
        for weight_decay in GRID_WEIGHT_DECAYS:
            grid_trained = resources.registry().get(grid_config(threshold, weight_decay))
            if grid_trained is not None:
                shown.append(
                    (
                        grid_trained,
                        resources.top(grid_trained, "true_minus_false", "augmented"),
                        resources.top(grid_trained, "true_minus_false", "bias_free"),
                        resources.decay_row(grid_trained),
                    )
                )
        grid_labels = resources.settings(grid_config(threshold, state.DEFAULTS.weight_decay))  # the grid's labels
        target_figure = figures.pixels(
            target,
            "target",
            f"Target #{target_index}",
            f"The target, MNIST training image #{target_index}",
            grid_labels,
            colours="digit",
        )

        def spread(row, view_name: str) -> str:
            """The concentration (bias-free) or the biases' size (augmented), for a title and its alt text."""
            if view_name == "bias_free":
                return f"λ₀ {row[3].top_share:.0%} of Σλ² · {row[3].n_90} for 90 %"
            return f"|b| {row[3].b_norm:.2f}"

        for view_name, pick in (("bias_free", 2), ("augmented", 1)):
            row_figures = [
                figures.pixels(
                    row[pick].image,
                    f"top_eigenvector_{view_name}_true_minus_false",
                    f"weight decay {row[0].config.weight_decay:g} · |cos| {row[pick].cos:.2f} · "
                    f"{spread(row, view_name)}",
                    f"Top True − False eigenvector of the {VIEWS[view_name].label.lower()}, precomputed model with "
                    f"weight decay {row[0].config.weight_decay:g} ({widgets.DIVERGING}): |cos| with the target "
                    f"{row[pick].cos:.2f}, {spread(row, view_name)}",
                    resources.settings(row[0]),
                )
                for row in shown
            ]
            target_column, row_column = st.columns([1, 5], vertical_alignment="center")
            with target_column:
                widgets.image(target_figure, width=112)
            with row_column:
                st.markdown(f"**{VIEWS[view_name].label}**")
                widgets.image_row(row_figures, width=112)
                widgets.downloads(f"eig_compare_{view_name}", [target_figure, *row_figures])
        if len(shown) < len(GRID_WEIGHT_DECAYS):
            st.warning(
                f"{len(GRID_WEIGHT_DECAYS) - len(shown)} precomputed checkpoints are missing on this server.",
                icon=":material/warning:",
            )
        if len(shown) >= 2:
            rows = [row for *_, row in shown]
            st.markdown("\n".join(f"- {s}" for s in findings.weight_decay_finding(rows).sentences()))
        st.caption(
            "Each eigenvector is flipped to point towards the target (its sign is arbitrary) and drawn on "
            "its own scale, red < 0 < blue."
        )
        grid_rows = [(t, row) for t in GRID_THRESHOLDS for row in resources.grid_decay_rows(t)]
        st.markdown(
            f"**The whole precomputed grid** ({len(grid_rows)} models, bias-free True − False block): the top "
            "eigenvector's |cos| with the target (solid) and its eigenvalue's share of Σλ² (dashed) against weight "
            "decay, computed from each model."
        )
        widgets.chart(
            figures.chart(
                charts.grid_concentration(grid_rows, threshold),
                "grid_concentration_vs_weight_decay",
                "Top eigenvector of the bias-free True − False block across the precomputed grid: |cos| with the "
                f"target (solid) and λ₀'s share of Σλ² (dashed) against weight decay; τ = {threshold:.2f} thicker",
                resources.settings(
                    grid_config(threshold, state.DEFAULTS.weight_decay), (), varying=("threshold", "weight_decay")
                ),
            ),
            "eig_compare_grid",
        )

widgets.next_step(
    "app_pages/explain.py",
    "Next: 5 · Explain →",
    ":material/manage_search:",
    "Split one image's output per eigenvector.",
)
widgets.code_expander(
    decompose,
    top_eigenvector,
    findings.target_finding,
    findings.bias_pair,
    findings.figure_code_finding,
    findings.decay_row,
    concentration_of,
    findings.weight_decay_finding,
    linear_term_image,
    grid_config,
    weight_decay_question,
)
