"""Home: what the class will discover, the four steps (two beyond the paper, the class board), the model the
teacher pinned for the room (if any) and where this student is."""

import streamlit as st

from core.config import Config
from ui import board, widgets

widgets.page_intro(
    "Bilinear Eigen Lab",
    ":material/biotech:",
    "A bilinear MLP computes its output as a *quadratic form* of its input, so its weights alone, "
    "without looking at a single activation, can be read as an interaction matrix. Today you label "
    "MNIST images by how much they look like one **target** digit, train such a model, and look for the "
    "target among that matrix's eigenvectors. Figure 6 of *Bilinear MLPs enable weight-based mechanistic "
    "interpretability* (Pearce et al., ICLR 2025, §4.3) finds it there; here you check when that holds, for "
    "any threshold, weight decay and target (see *What the paper says and what this lab shows* below).",
    r"\text{logit}_1(x) - \text{logit}_0(x) \;=\; \tilde x^\top W_e'^\top B\, W_e' \tilde x "
    r"\;=\; \sum_i \lambda_i \,(u_i \cdot \tilde x)^2, \qquad \tilde x = [x, 1],\ u_i = W_e'^\top v_i",
)
board.pinned_card()  # the model the teacher pinned for the room, if any (a Use this model button)

st.subheader("The four steps")
steps = [
    (
        "app_pages/label.py",
        "1 · Label",
        ":material/label:",
        "Pick a target digit and a similarity threshold: images that look like it become class 1.",
    ),
    (
        "app_pages/train.py",
        "2 · Train",
        ":material/model_training:",
        "Train a one-layer bilinear MLP on those labels and watch its loss fall, epoch by epoch.",
    ),
    (
        "app_pages/tensor.py",
        "3 · Tensor",
        ":material/grid_on:",
        "Fold the biases into the weights and check that one matrix reproduces the model's logits exactly.",
    ),
    (
        "app_pages/eigenvectors.py",
        "4 · Eigenvectors",
        ":material/insights:",
        "Decompose that matrix and look for the target among its eigenvectors, read straight from the weights.",
    ),
]
beyond = [
    (
        "app_pages/explain.py",
        "5 · Explain",
        ":material/manage_search:",
        "Split one image's output, yours drawn with the mouse if you like, into an exact term per eigenvector.",
    ),
    (
        "app_pages/truncation.py",
        "6 · Truncation",
        ":material/content_cut:",
        "Keep only the top-k eigenvectors and measure how many the model needs to classify as well as before.",
    ),
]
the_class = [
    (
        "app_pages/class_board.py",
        "7 · Class board",
        ":material/groups:",
        "Everyone's models side by side, live: who found the target in the weights, and with which settings.",
    )
]
for heading, rows in ((None, steps), ("Beyond the paper", beyond), ("The class", the_class)):
    if heading:
        st.subheader(heading)
    for path, label, icon, description in rows:
        left, right = st.columns([1, 4], vertical_alignment="center")
        with left:
            st.page_link(path, label=label, icon=icon)
        right.markdown(description)

notes = widgets.lazy_expander(
    "What the paper says and what this lab shows (docs/science.md)", "science_notes", ":material/menu_book:"
)
if notes is not None:
    notes.markdown(widgets.science_notes())

st.subheader("Where you are")
st.markdown(
    "Steps 3 to 6 work right away with the pretrained checkpoint; train your own model in "
    "step 2 (or pick a precomputed one in step 4) and they will show it instead. The sidebar's "
    "**Your model** section downloads it or loads one back, and the address bar keeps your settings "
    "and model: copy it to share exactly what you see."
)
widgets.model_badge(needs_model=False)  # the first use of torch: everything above is already on screen

from core.checkpoint import load_checkpoint

widgets.code_expander(Config, load_checkpoint)
