"""7 · Class board: every model the room trained, live, beside the 15 precomputed ones; and the teacher's controls.

What it draws comes from one call, ui.board.snapshot (core.board words each model); a fragment,
ui.board.watch, reruns the page when another student's model arrives or the teacher changes the room.
"""

import time

import streamlit as st

from core.board import board_row, counted, label, nickname, points, table
from core.eigen import cos_with_centered_target, decompose, top_eigenvector
from core.lesson import STEPS, tally
from render import charts
from ui import board, models, state, widgets
from ui.state import TOKEN_KEY

widgets.page_intro(
    "Class board",
    ":material/groups:",
    "Every model trained on this server today, by anyone in the room, appears here within seconds, beside the 15 "
    "precomputed ones: who trained it (an anonymous nickname), with which settings, and how much the top "
    "eigenvector of its bias-free True − False block looks like the target. Together they answer Figure 6's "
    "question for the whole class at once: which thresholds and weight decays put the target in the weights?",
    r"|\cos(u_0,\, t - \bar t\,)| = \frac{|u_0 \cdot (t - \bar t\,)|}{\lVert u_0 \rVert\, \lVert t - \bar t \rVert},"
    r" \qquad B v_0 = \lambda_{\max} v_0, \quad u_0 = W_e'^\top v_0",
    lead="Every model the room trains appears here within seconds: does its top "
    "eigenvector look like the target, and for which settings?",
)


@st.fragment(run_every=board.REFRESH_SECONDS)
def training_runs() -> None:
    """The runs queued or training now, redrawn every few seconds: board.watch reruns the page for new models
    only, so a run that starts after the board was drawn would otherwise show as "none" until it ends."""
    state.show_notices()  # a Cancel pressed here reruns this fragment only: its message shows here
    running = board.runs()
    st.markdown(f"**Training runs on this server:** {len(running) or 'none'}")
    for job in running:
        line, button = st.columns([4, 1], vertical_alignment="center")
        line.markdown(board.describe_run(job))
        button.button(
            "Cancel",
            key=f"teacher_cancel_{board.config_id(job.config)}",
            icon=":material/cancel:",
            on_click=board.cancel_run,
            args=(board.config_id(job.config),),
            help="Stops this run for everyone who follows it; they keep their previous model.",
        )


widgets.model_badge()
shown = board.snapshot()
board.watch(shown.key, shown.missing, time.time())  # reruns this page when the board changes
tz = board.timezone()
active = models.active_or_none()
active_id = active.model_id if active is not None else None
mine = nickname(st.session_state[TOKEN_KEY]) if TOKEN_KEY in st.session_state else None
st.caption(
    f"Your models appear here as **{mine}**." if mine else "A model you train appears here under a nickname.",
    help="Nicknames are anonymous (an adjective and an animal drawn from your browser tab's random id) and change "
    "when you reload the page; clock times are yours.",
)

pinned = shown.pinned()
if pinned is not None:
    st.info(
        f"Pinned for the class by the teacher: {label(pinned.row, tz)}. Every Home page offers it.",
        icon=":material/push_pin:",
    )

if not shown.entries:
    st.info(
        "No model trained in class yet"
        + (f" since the teacher cleared the board ({shown.hidden} hidden)" if shown.hidden else "")
        + ": when someone trains one on the Train page, it appears here by itself. Meanwhile the 15 precomputed "
        "models are the backdrop.",
        icon=":material/hourglass_empty:",
    )
elif shown.hidden:
    st.caption(f"The teacher cleared {counted(shown.hidden, 'earlier model')} from the board.")
if shown.missing:
    st.caption(
        f"Models the class trained that the model store cannot give yet: {shown.missing} (another server has not "
        "written them, or the store does not answer). This board asks again every "
        f"{board.MISSING_RETRY_SECONDS:g} s and shows them once it can."
    )


def gallery(entries, per_row: int) -> None:
    """Each model's top eigenvector, with a button that makes it the student's model."""
    for start in range(0, len(entries), per_row):
        for column, shown_entry in zip(st.columns(per_row), entries[start : start + per_row], strict=False):
            with column:
                widgets.image(board.thumbnail(shown_entry, tz), width=112)
                if shown_entry.row.model_id == active_id:
                    st.caption(":material/check: Your active model")
                else:
                    st.button(
                        "Use this model",
                        key=f"board_use_{shown_entry.row.model_id}",
                        on_click=board.use,
                        args=(shown_entry.row.model_id,),
                        help="Make it your model on every page (Tensor, Eigenvectors, Explain, Truncation).",
                    )


per_row = 3 if st.session_state.get("projector") else 6
st.subheader("Every model in the room: its top eigenvector")
st.caption(
    "Under each: who trained it, τ, weight decay, |cos| with the target.",
    help=f"Each image is the top eigenvector of the bias-free True − False block, 28×28 pixels ({widgets.DIVERGING}), "
    "flipped towards the target.",
)
gallery(shown.entries, per_row)
strips = (
    widgets.lazy_expander("How the target appeared in each model, as it trained", "board_strips", ":material/movie:")
    if shown.entries
    else None
)
if strips is not None:
    with strips:
        drawn = [f for f in (board.strip(e, tz) for e in shown.entries[: board.STRIPS_SHOWN]) if f is not None]
        st.caption(
            f"The top eigenvector of the newest {min(len(shown.entries), board.STRIPS_SHOWN)} models at the start, "
            "during and at the end of training, each at its own scale: "
            + (
                "does the target form in the weights as they learn? Each caption lists |cos| with the target at "
                "those moments."
                if drawn
                else "none of them kept a record of it (they were trained before the lab recorded one)."
            )
        )
        for figure in drawn:
            widgets.image(figure, width=356)
backdrop = widgets.lazy_expander(
    f"The {len(shown.backdrop)} precomputed models (the backdrop)", "board_backdrop", ":material/bolt:"
)
if backdrop is not None:
    with backdrop:
        gallery(shown.backdrop, per_row)

st.subheader("Weight decay against |cos|, every model of the room")
widgets.altair(charts.board_scatter(points(board.rows(shown.all), tz)))
st.caption(
    "Dots: the class's models; squares: the 15 precomputed ones; colour: τ.",
    help="Hover a point for who trained it, when and with which settings.",
)

with st.expander("The table: every model's settings and numbers", icon=":material/table:", key="board_table"):
    st.dataframe(
        table(board.rows(shown.all), tz, active_id, shown.room.pinned),
        hide_index=True,
        width="stretch",
        column_config={
            "threshold τ": st.column_config.NumberColumn(format="%.2f"),
            "weight decay": st.column_config.NumberColumn(format="%g"),
            "noise": st.column_config.NumberColumn(format="%g"),
            "val acc": st.column_config.NumberColumn("validation accuracy", format="percent"),
            "|cos|": st.column_config.ProgressColumn(
                "|cos| with the target",
                format="%.2f",
                min_value=0.0,
                max_value=1.0,
                help="Of the top eigenvector of the bias-free True − False block with the mean-centred target.",
            ),
            "top share of Σλ²": st.column_config.NumberColumn(
                format="percent",
                help="That eigenvector's eigenvalue squared over Σλ² of the block: near 100 % means one spike, the "
                "paper's “one high positive eigenvalue”.",
            ),
            "status": st.column_config.TextColumn(
                help="pinned: the model the teacher pinned; yours: your active model"
            ),
            "model": st.column_config.TextColumn("model id", help="The model's id: model=<id> in a link opens it."),
        },
    )

answers = shown.room.answers_visible
tally_box = (
    st.container()
    if shown.room.votes
    else st.expander("How the room predicted (lesson mode)", icon=":material/how_to_vote:", key="board_tally")
)
with tally_box:
    st.subheader("How the room predicted (lesson mode)")
    st.caption(
        "In lesson mode (the sidebar's switch) every step asks a question before it shows its result; each revealed "
        "prediction is counted here, anonymously, one per browser tab and step. "
        + (
            "The teacher has shown the answers: the second bar counts the students for whom a choice was right (it "
            "depends on each one's target and model)."
            if answers
            else "The right answers stay hidden until the teacher shows them."
        )
    )
    for step in STEPS:
        counted = tally(shown.room.votes, step)
        st.markdown(f"**{step.title}:** {step.summary}")
        if counted.n:
            widgets.altair(charts.lesson_tally(counted, answers))
        st.caption(" ".join(counted.sentences(answers)))

st.subheader("Teacher controls", divider="gray")
if not board.controls_enabled():
    st.info(
        "The teacher controls (pin a model for the class, clear the board, show the answers) are off on this server: "
        "no passcode is set. To turn them on, add a root-level key `teacher_passcode` (a passcode of your choice) "
        "to the app's "
        "**Secrets** (Streamlit Community Cloud: the app's Settings → Secrets), or set the environment variable "
        f"`{board.PASSCODE_ENV}` on a server of your own; then reload this page.",
        icon=":material/lock:",
    )
elif not board.is_teacher():
    wait = board.locked_out()
    if wait > 0:
        st.warning(board.lockout_text(wait), icon=":material/timer:")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.text_input(
        "Teacher passcode",
        type="password",
        key=board.PASSCODE_WIDGET,
        on_change=board.unlock,
        autocomplete="off",
        help="Unlocks the controls in this browser tab only. Students do not need it.",
    )
    right.button("Unlock", key="teacher_unlock", icon=":material/lock_open:", on_click=board.unlock)
else:
    choices = shown.choices(tz)
    newest = shown.entries[0].row.model_id if shown.entries else None
    if newest is not None and st.session_state.get("_pin_default") != newest:  # a new student model: offer it
        st.session_state["_pin_default"] = st.session_state[board.PIN_CHOICE] = newest
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.selectbox(
        "Model to pin on every student's Home page",
        list(choices),
        format_func=choices.__getitem__,
        key=board.PIN_CHOICE,
    )
    right.button("Pin it", key="teacher_pin", type="primary", icon=":material/push_pin:", on_click=board.pin)
    with st.container(horizontal=True):
        st.button(
            "Unpin",
            key="teacher_unpin",
            icon=":material/remove_circle:",
            on_click=board.unpin,
            disabled=shown.room.pinned is None,
        )
        st.button(
            "Clear the board",
            key="teacher_clear",
            icon=":material/layers_clear:",
            on_click=board.clear,
            disabled=not shown.entries,
            help="Hides the models trained so far from the board. Nobody loses a model: whoever uses one keeps it.",
        )
        st.button(
            "Hide the lesson's answers" if answers else "Show the lesson's answers",
            key="teacher_answers",
            icon=":material/visibility_off:" if answers else ":material/visibility:",
            on_click=board.show_answers,
            args=(not answers,),
        )
        st.button(
            "Reset the lesson's tally",
            key="teacher_clear_votes",
            icon=":material/restart_alt:",
            on_click=board.clear_votes,
            disabled=not shown.room.votes,
            help="Forgets every prediction counted so far (the students keep their own progress).",
        )
        st.button("Lock", key="teacher_lock", icon=":material/lock:", on_click=board.lock)
    st.caption(
        f"The lesson's answers are **{'visible' if answers else 'hidden'}** for the class. "
        "These controls act on the whole room; they stay unlocked in this tab until you press Lock or reload."
    )
    cap_key, cap = board.cap_widget()  # the class's cap now, whichever replica's board set it
    st.number_input(
        "Longest training run (minutes, as this server estimates it)",
        min_value=board.CAP_RANGE[0],
        max_value=board.CAP_RANGE[1],
        step=0.5,
        value=cap,
        key=cap_key,
        on_change=board.set_cap,
        args=(cap_key,),
        help="Train refuses settings estimated past it and offers the nearest settings that fit. It holds on "
        "every server of the class and stays for the next class until you change it.",
    )
    training_runs()

widgets.next_step("app_pages/home.py", "Back to Home", ":material/home:", "")
widgets.code_expander(nickname, board_row, decompose, top_eigenvector, cos_with_centered_target)
