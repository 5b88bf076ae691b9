"""Home: the lesson in one picture (the target beside the top eigenvector of the model's weights, and the
verdict), one sentence of what the class will find, the steps, the model the teacher pinned (if any)."""

import streamlit as st

from core.config import Config
from ui import board, state, widgets

st.title("Bilinear Eigen Lab", icon=":material/biotech:")
st.markdown(
    "Label handwritten digits by how much they look like one **target** image, train a small network on those "
    "labels, and the target reappears in its weights: no data needed to see what it learnt.",
    help="A bilinear MLP's output is a quadratic form of its input, so one matrix made of its weights says "
    "exactly what it computes; that matrix's eigenvectors are images. Figure 6 of Pearce et al., *Bilinear MLPs "
    "enable weight-based mechanistic interpretability* (ICLR 2025, §4.3).",
)
state.show_notices()


def picture() -> None:
    from ui import models, punchline  # torch and altair load here: the sentence above is on screen first

    try:
        trained = models.active()
    except models.NoModel as missing:
        st.info(str(missing), icon=":material/model_training:")
        return
    punchline.show(trained, "home")


picture()
board.pinned_card()  # the model the teacher pinned for the room, if any (a Use this model button)
widgets.next_step(
    "app_pages/label.py", "Start: 1 · Label →", ":material/label:", "Pick a target; train; find it again in step 4."
)

STEPS = (
    ("app_pages/label.py", "1 · Label", ":material/label:", "Images that look like the target become class 1."),
    ("app_pages/train.py", "2 · Train", ":material/model_training:", "Train a one-layer bilinear MLP, about 5 s."),
    ("app_pages/tensor.py", "3 · Tensor", ":material/grid_on:", "One matrix reproduces the model's logits exactly."),
    ("app_pages/eigenvectors.py", "4 · Eigenvectors", ":material/insights:", "Find the target among its eigenvectors."),
    ("app_pages/explain.py", "5 · Explain", ":material/manage_search:", "Split one image's output per eigenvector."),
    ("app_pages/truncation.py", "6 · Truncation", ":material/content_cut:", "How few eigenvectors does it need?"),
    ("app_pages/class_board.py", "7 · Class board", ":material/groups:", "Everyone's models side by side, live."),
)
with st.container(horizontal=True, key="home_steps"):
    for path, label, icon, description in STEPS:
        st.page_link(path, label=label, icon=icon, help=description)

glossary = widgets.lazy_expander("Words used in this lab", "glossary", ":material/dictionary:")
if glossary is not None:
    glossary.markdown(widgets.GLOSSARY)
notes = widgets.lazy_expander(
    "What the paper says and what this lab shows (docs/science.md)", "science_notes", ":material/menu_book:"
)
if notes is not None:
    notes.markdown(widgets.science_notes())
st.caption(
    "Your settings and model are in the address bar: copy it to share exactly what you see. "
    "The sidebar's **Your model** downloads your model or loads one back."
)

from core.checkpoint import load_checkpoint

widgets.code_expander(Config, load_checkpoint)
