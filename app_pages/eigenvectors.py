"""Step 4 · Eigenvectors: decompose the interaction matrix and find the target in the weights (Figure 6).

Also the instant grid sliders (precomputed checkpoints, core.grid) and a view comparing the top
eigenvector across weight decays.
"""

import streamlit as st

from core.eigen import cos_with_centered_target, decompose, linear_term_image, top_eigenvector
from core.grid import GRID_THRESHOLDS, GRID_WEIGHT_DECAYS, grid_config, load_index
from ui import charts, models, resources, state, widgets

widgets.page_intro(
    "Eigenvectors",
    ":material/insights:",
    "A symmetric matrix splits into orthogonal eigenvectors, each an input pattern the output responds to "
    "*quadratically*: positive eigenvalues push the output up, negative ones push it down. Mapped back "
    "through the embedding, each eigenvector is an image, and the top one is the target the labels were "
    "built from: the weights alone tell us what the model computes.",
    r"B = \sum_i \lambda_i\, v_i v_i^\top \;\Longrightarrow\; \tilde x^\top W_e'^\top B\, W_e' \tilde x "
    r"= \sum_i \lambda_i \,(u_i \cdot \tilde x)^2, \qquad u_i = W_e'^\top v_i",
)
widgets.model_badge()
trained = models.active()
on_grid = models.grid_point(trained)
if on_grid is not None:  # the sliders show the active model whenever it is a precomputed one
    st.session_state.grid_threshold, st.session_state.grid_weight_decay = on_grid

with st.container(border=True):
    st.markdown(
        "**Instant models.** 15 models were trained before class with the paper's settings, varying only "
        "the threshold τ and the weight decay: move a slider and that model is shown at once, on every page."
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
        st.caption(
            "The model shown is not one of the precomputed ones (see the badge); settings off this grid "
            "train live on the Train page."
        )

H = trained.config.d_hidden
st.session_state.top_k = min(st.session_state.top_k, H + 1)  # another model may be smaller
st.session_state.eig_index = min(st.session_state.eig_index, H)
eigen_tab, compare_tab = st.tabs(list(state.EIGEN_VIEWS.values()), key="eig_view", on_change="rerun")

with eigen_tab:
    if eigen_tab.open:  # only the open tab runs, so a slider move redraws one view
        controls = st.columns([3, 2], vertical_alignment="bottom")
        with controls[0]:
            direction = widgets.direction_picker("Interaction matrix", "direction")
        k = controls[1].slider(
            "Eigenvectors shown at each end", 1, min(state.TOP_K_MAX, H + 1), key="top_k", persist_state="session"
        )

        eigen = resources.eigen(trained.model_id, trained, direction)
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
                widgets.image_row(
                    [charts.diverging_image(images[i], scale=4) for i in indices], eigen_captions(indices), width=124
                )
        st.caption(
            "Red < 0 < blue, each image on its own symmetric scale ±max|v|. An eigenvector's sign is "
            "arbitrary: only its pattern and |cos| carry meaning."
        )

        st.subheader("Compare with the target")
        columns = st.columns(4)
        with columns[0]:
            st.image(
                charts.digit_image(target, scale=5), caption=f"Target: training image #{trained.config.target_index}"
            )
        with columns[1]:
            st.image(charts.diverging_image(images[0], scale=5), caption="Top eigenvector u₀ (784 pixels)")
        with columns[2]:
            st.image(
                charts.diverging_image(linear_term_image(eigen, trained.model.W_e), scale=5),
                caption="Linear term 2·W_eᵀ B[:-1, -1]: what the biases add",
            )
        with columns[3]:
            st.metric(
                "|cos(u₀, target − mean)|",
                f"{cosines[0]:.2f}",
                border=True,
                help="Cosine between the top eigenvector's pixels and the mean-centred target: 1 means the "
                "same image up to sign and scale, 0 unrelated. The paper's Figure 6 shows the match "
                "by eye.",
            )

        st.subheader("Browse every eigenvector")
        browse_column, heatmap_column = st.columns([1, 2])
        with browse_column:
            index = st.slider(
                "Eigenvector index (0 = largest eigenvalue)", 0, H, key="eig_index", persist_state="session"
            )
            st.metric("Eigenvalue λ", f"{eigen.eigenvalues[index]:.4f}")
            st.metric("|cos| with the centred target", f"{cosines[index]:.2f}")
        heatmap_column.altair_chart(
            charts.pixel_heatmap(images[index], f"Eigenvector #{index} in pixel space (hover me)"), width="content"
        )

with compare_tab:
    if compare_tab.open:
        threshold = st.session_state.grid_threshold
        st.markdown(
            f"The top **True − False** eigenvector of the five precomputed models with threshold "
            f"τ = {threshold:.2f}, from no weight decay to the strongest (change τ with the slider above). "
            "Weight decay shrinks every weight the task does not need, so the noise around the pattern "
            "fades and |cos| with the target rises, at almost no cost in accuracy."
        )
        shown = []
        for weight_decay in GRID_WEIGHT_DECAYS:
            grid_trained = resources.registry().get(grid_config(threshold, weight_decay))
            if grid_trained is not None:
                shown.append((weight_decay, grid_trained, resources.top(grid_trained, "true_minus_false")))
        target_column, row_column = st.columns([1, 5], vertical_alignment="center")
        target_index = state.DEFAULTS.target_index  # every precomputed model has the paper's target
        target_column.image(
            charts.digit_image(resources.mnist().train_x[target_index], scale=4),
            caption=f"Target #{target_index}",
            width=112,
        )
        with row_column:
            widgets.image_row(
                [charts.diverging_image(top.image, scale=4) for _, _, top in shown],
                [
                    f"weight decay {wd:g} · |cos| {top.cos:.2f} · accuracy {g.history[-1].val_acc:.1%}"
                    for wd, g, top in shown
                ],
                width=112,
            )
        if len(shown) < len(GRID_WEIGHT_DECAYS):
            st.warning(
                f"{len(GRID_WEIGHT_DECAYS) - len(shown)} precomputed checkpoints are missing on this server.",
                icon=":material/warning:",
            )
        st.caption(
            "Each eigenvector is flipped to point towards the target (its sign is arbitrary) and drawn on "
            "its own scale, red < 0 < blue."
        )
        st.markdown(
            "**|cos| with the target across the whole grid**, from `checkpoints/grid/index.json` "
            "(written when the grid was trained):"
        )
        st.altair_chart(charts.cos_vs_weight_decay(list(resources.grid_index().values()), threshold), width="stretch")

widgets.code_expander(decompose, linear_term_image, cos_with_centered_target, top_eigenvector, grid_config, load_index)
