"""Step 1 · Label: the seed's similarity rule turns MNIST into a two-class problem around one target."""

import streamlit as st

from core.config import N_TRAIN_MNIST
from core.labels import class_balance_problem, cosine_similarities, labels_from_similarities
from core.lesson import Question, balance_question
from render import charts, figures
from ui import lesson, links, resources, state, widgets

N_EXAMPLES = 10

widgets.page_intro(
    "Label",
    ":material/label:",
    "Every training image is labelled **true** when it looks like one chosen target image (or like its "
    "photographic negative), and **false** otherwise. The model never sees the target itself: if we can "
    "later read it back from the weights alone, the weights really do encode what the model computes.",
    r"y(x) = \big[\cos(x, t) > \tau\big] \;\lor\; \big[\cos(x, 1 - t) > \tau\big], \qquad "
    r"\cos(a, b) = \frac{a \cdot b}{\lVert a \rVert\, \lVert b \rVert}",
    lead="Images that look like the **target** (or its photographic negative) are "
    "labelled *true*, the rest *false*. The model never sees the target itself.",
)
widgets.model_badge("The labels you choose here are used by the next model you train.", needs_model=False)
mnist = resources.mnist()


def lesson_question() -> Question:
    """Lesson mode's question for the target and rule now set (core.lesson.balance_question)."""
    ss = st.session_state
    sims = resources.similarities(ss.target_index)
    return balance_question(
        sims.train, ss.include_inverse, ss.threshold, ss.target_index, int(mnist.train_y[ss.target_index])
    )


if lesson.enabled():  # (five labellings of 60 000 images: only in lesson mode, not on every slider step)
    lesson.gate(lesson_question(), explain=False)  # the fragment explains: its widgets change the answer


def pick_random_target() -> None:
    """Button callback (runs before the widgets are drawn): a random image of the chosen digit."""
    st.session_state.target_index = resources.random_index_of_digit(st.session_state.random_digit)


@st.fragment
def labelling() -> None:
    """Everything the target, the threshold and the inverse toggle change. A slider step reruns only this
    fragment (not the page's intro, badge and sidebar), so a burst of arrow presses never queues."""
    if lesson.enabled():
        lesson.explanation(lesson_question())
    target_column, rule_column = st.columns([1, 2], gap="large")
    with target_column:
        st.subheader("Target")
        st.number_input(
            "Training image #",
            0,
            N_TRAIN_MNIST - 1,
            step=1,
            key="target_index",
            persist_state="session",
            help="Index into the 60 000 MNIST training images; the paper's seed uses #6, a 1.",
        )
        digit_column, button_column = st.columns([2, 3], vertical_alignment="bottom")
        digit_column.selectbox("Or pick a digit", range(10), key="random_digit", persist_state="session")
        button_column.button(
            "Random image",
            icon=":material/casino:",
            key="random_target",
            width="stretch",
            on_click=pick_random_target,
            help="A random training image of the chosen digit.",
        )
        index = st.session_state.target_index
        labels = resources.settings(state.label_config())  # what the figures of this page are made with
        target = figures.pixels(
            mnist.train_x[index],
            "target",
            f"Training image #{index}, a handwritten {int(mnist.train_y[index])}",
            f"The target: MNIST training image #{index}, a handwritten {int(mnist.train_y[index])}",
            labels,
            colours="digit",
            scale=8,
        )
        widgets.image(target, width=224)
        widgets.downloads("label_target", [target])

    with rule_column:
        st.subheader("Rule")
        st.slider(
            "Threshold τ",
            0.0,
            1.0,
            step=0.01,
            key="threshold",
            persist_state="session",
            help="An image is labelled true when its cosine similarity exceeds τ.",
        )
        st.toggle(
            "Also label images that look like the inverse, 1 − target", key="include_inverse", persist_state="session"
        )
        threshold, include_inverse = st.session_state.threshold, st.session_state.include_inverse
        sims = resources.similarities(index)
        train_labels = labels_from_similarities(sims.train, threshold, include_inverse)
        test_labels = labels_from_similarities(sims.test, threshold, include_inverse)
        widgets.chart(
            figures.chart(
                charts.similarity_histogram(sims.train.to_target, sims.train.to_inverse, threshold, include_inverse),
                "similarity_histogram",
                "Cosine similarity of the 60 000 training images with the target and with its inverse",
                labels,
            ),
            "label_histogram",
        )
        splits = (("training", train_labels), ("test", test_labels))
        for column, (split, split_labels) in zip(st.columns(2), splits, strict=True):
            value, detail = widgets.fraction_true(split_labels)
            column.metric(f"Labelled true, {split} set", value, help=detail)

    widgets.class_balance(train_labels, class_balance_problem(train_labels))

    st.subheader("Examples from the training set")
    st.caption("Captions: cosine similarity with the target · with its inverse.")
    for value, title in ((1, "Labelled true"), (0, "Labelled false")):
        indices = resources.first_with_label(train_labels, value, N_EXAMPLES)
        st.markdown(f"**{title}**" + ("" if indices else ": no image"))
        if indices:
            widgets.image_row(
                [
                    figures.pixels(
                        mnist.train_x[i],
                        f"train{i}_labelled_{title.split()[-1]}",
                        f"{sims.train.to_target[i]:.2f} · {sims.train.to_inverse[i]:.2f}",
                        f"Training image #{i}, a handwritten {int(mnist.train_y[i])}, {title.lower()}: cosine "
                        f"{sims.train.to_target[i]:.2f} with the target, {sims.train.to_inverse[i]:.2f} with its "
                        "inverse",
                        labels,
                        colours="digit",
                        scale=3,
                    )
                    for i in indices
                ],
                key=f"label_examples_{value}",
            )
    links.write()  # the address follows the settings, on a partial rerun too


labelling()

widgets.next_step(
    "app_pages/train.py", "Next: 2 · Train →", ":material/model_training:", "Train a model on these labels."
)
widgets.code_expander(cosine_similarities, labels_from_similarities, class_balance_problem, balance_question)
