"""Lesson mode: the sidebar switch, each step's predict-then-reveal gate, and the room's tally of predictions.

With the switch on, a step's page (core.lesson.STEPS) calls `gate(question)` right after its badge: until
the student reveals the step, the gate draws the question (a radio with no default and a Reveal button
that stays disabled until a choice is made) and raises `Pending`, which the entry file's `shield` lets
pass silently, so the page's result is never drawn but the sidebar is. Reveal (a button callback, so it
runs before the next draw) records the prediction in st.session_state[PROGRESS_KEY] (ui.links mirrors it
into the URL as `picked=`, so a reload keeps it) and casts one anonymous vote in the server-wide
ClassRoom (ui.board.classroom), keyed by the session's token. From then on the gate draws the prediction,
whether it matches the answer for the settings now on screen and the computed explanation, and lets the
page draw its result.
"""

from __future__ import annotations

import streamlit as st

from core.lesson import BY_ID, STEPS, Question, Step, Vote, ordered

MODE_KEY = "lesson"  # the sidebar toggle (a widget key; `lesson=true` in the URL)
PROGRESS_KEY = "_lesson_progress"  # not a widget: core.lesson.Progress, the revealed steps and their picks
COUNTED_KEY = "_lesson_counted"  # not a widget: steps a link's `picked=` says were revealed (and counted) before


class Pending(Exception):
    """The page's step is not revealed yet: the page stops after its question (not an error)."""


def enabled() -> bool:
    """Lesson mode is on for this session (the sidebar switch or `lesson=1` in the link)."""
    return bool(st.session_state.get(MODE_KEY))


def picks() -> dict[str, int]:
    """This session's revealed steps: step id -> the choice it predicted."""
    return dict(st.session_state.get(PROGRESS_KEY, ()))


def choice_key(step_id: str) -> str:
    return f"lesson_choice_{step_id}"


def reveal(step_id: str, right: int) -> None:
    """The Reveal button's callback: keep the prediction (session and URL) and count it for the room."""
    chosen = st.session_state.get(choice_key(step_id))
    if chosen is None:  # the button is disabled without a choice; a forged click changes nothing
        return
    st.session_state[PROGRESS_KEY] = ordered({**picks(), step_id: chosen})
    if step_id in st.session_state.get(COUNTED_KEY, ()):  # revealed before this reload: its vote is in the tally
        return
    from ui import board, models  # altair and pandas load with them: the entry file imports this module

    board.classroom().vote(Vote(models.session_token(), step_id, chosen, right))


def counted_by_link(progress: dict[str, int] | tuple) -> None:
    """A link (a reload) brought revealed steps: they were counted by the session that revealed them, so
    revealing them again here (after Start over) adds no vote: one vote per step per student."""
    st.session_state[COUNTED_KEY] = frozenset(step for step, _ in dict(progress).items())


def start_over() -> None:
    """Forget this session's predictions (the room's tally keeps its votes until the teacher resets it; a step
    counted before a reload stays counted, COUNTED_KEY)."""
    st.session_state[PROGRESS_KEY] = ()
    for step in STEPS:
        st.session_state.pop(choice_key(step.id), None)


def sidebar() -> None:
    """The sidebar's Lesson mode switch and, when it is on, the steps with a mark for each one revealed."""
    with st.sidebar:
        st.toggle(
            "Lesson mode",
            key=MODE_KEY,
            persist_state="session",
            help="A guided walk: each step opens with a question to answer before its result is shown. Your "
            "predictions are counted anonymously on the class board, and the address keeps your progress.",
        )
        if not enabled():
            return
        done = picks()
        st.caption(f"Lesson: {len(done)} of {len(STEPS)} steps revealed.")
        for step in STEPS:
            revealed = step.id in done
            st.page_link(
                step.page,
                label=f"{step.title} ({'revealed' if revealed else 'to predict'})",
                icon=":material/check_circle:" if revealed else ":material/radio_button_unchecked:",
            )
        st.button(
            "Start the lesson over",
            key="lesson_start_over",
            icon=":material/restart_alt:",
            on_click=start_over,
            disabled=not done,
            help="Forget your predictions in this tab (the class board keeps the ones already counted).",
        )


def gate(question: Question | None, missing: str = "", explain: bool = True) -> None:
    """A step's question before its result; raises Pending until the student reveals it, then (`explain`)
    draws the prediction's verdict and explanation. Without lesson mode, or without a question (`missing`
    says why: its evidence is not on this server), it draws nothing but that.

    A page whose result is a fragment passes explain=False and calls `explanation` inside the fragment: a
    widget there reruns only the fragment, and the verdict must follow the settings it changes."""
    if not enabled():
        return
    if question is None:
        st.info(f"Lesson mode: this step has no question on this server ({missing}).", icon=":material/school:")
        return
    step = question.step
    if step.id in picks():
        if explain:
            explanation(question)
        return
    with st.container(border=True):
        st.markdown(f":material/school: **Lesson · {step.title}: predict first.** {question.prompt}")
        st.radio(
            "Your prediction",
            range(len(step.choices)),
            index=None,
            format_func=step.choices.__getitem__,
            key=choice_key(step.id),
        )
        st.button(
            "Reveal",
            key=f"lesson_reveal_{step.id}",
            type="primary",
            icon=":material/visibility:",
            on_click=reveal,
            args=(step.id, question.answer),
            disabled=st.session_state.get(choice_key(step.id)) is None,
            help="Shows this page's live result. Your prediction is then counted, anonymously, on the class board.",
        )
        st.caption("The page's result appears once you reveal it.")
        raise Pending(step.id)


def explanation(question: Question) -> None:
    """After Reveal: the prediction, whether it matches the answer for the settings now on screen, the two
    computed sentences and a link to the next step (nothing outside lesson mode or before Reveal)."""
    step = question.step
    chosen = picks().get(step.id)
    if not enabled() or chosen is None:
        return
    with st.container(border=True):
        st.markdown(f":material/school: **Lesson · {step.title}.** {question.prompt}")
        right = step.choices[question.answer]
        st.markdown(
            f"You predicted **{step.choices[chosen]}**. "
            + (
                f":material/check_circle: **Right** for {question.about}."
                if chosen == question.answer
                else f":material/cancel: **Not this time**: for {question.about} it is **{right}**."
            )
        )
        st.markdown(" ".join(question.explanation))
        following = _next_step(step.id)
        if following is not None:
            st.page_link(following.page, label=f"Next: {following.title}", icon=":material/arrow_forward:")
        else:
            st.page_link(
                "app_pages/class_board.py", label="Last step: see how the room predicted", icon=":material/groups:"
            )


def _next_step(step_id: str) -> Step | None:
    ids = [step.id for step in STEPS]
    position = ids.index(step_id)
    return BY_ID[ids[position + 1]] if position + 1 < len(ids) else None
