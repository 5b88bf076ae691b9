"""Lesson mode's questions: predict first, then see the page's live result (UI-free, no Streamlit).

A lesson is a guided walk through the experiment's pages (`STEPS`). Each step opens with a
multiple-choice question about the result the page is about to show; the student picks an answer,
presses Reveal, and only then sees the result and a two-sentence explanation. A prediction made
before seeing the answer is what makes the result stick (and a room's spread of predictions is
what a teacher wants on the projector).

A step's choices are fixed, so the votes of a whole room can be tallied side by side, but which
choice is right, the question's wording and its explanation are computed from the numbers the page
computes for the student's own settings and model (`balance_question`, `tensor_question`,
`weight_decay_question`, `truncation_question`): they stay true for every target, threshold and
model. The weight-decay question compares two precomputed models (core.grid) that need not be the
model on screen, and its prompt names them.

Progress (which steps a student revealed, and what they predicted) travels in the URL as
`picked=label-1.eigenvectors-0` (`format_progress` / `parse_progress`). Votes (`Vote`) are tallied
anonymously for the class board (`record`, `tally`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.findings import DecayRow, weight_decay_finding
from core.labels import Similarities, labels_from_similarities, percent  # percent: the Label page's wording
from core.truncation import TruncationCurves, smallest_k_within


@dataclass(frozen=True)
class Step:
    """One stop of the guided walk: which page, what the room is asked, and the fixed choices."""

    id: str  # in the URL and in widget keys
    page: str  # the app page the step opens on
    title: str  # as in the navigation
    summary: str  # the question in a few words, the same for everyone (the class board's heading)
    choices: tuple[str, ...]


BALANCE_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6)  # the label step's choices of τ
EXACT = 1e-9  # the tensor step: below this, a difference is float64 rounding
CLOSE = 1e-2  # ... below this, "close" (a hundredth of a logit)
K_BANDS = ((1, 1), (2, 5), (6, 20))  # the truncation step's first three choices; the fourth is "more, or never"
PAPER_WEIGHT_DECAY = 1.0  # the weight decay the paper's seed notebook trains with

STEPS: tuple[Step, ...] = (
    Step(
        "label",
        "app_pages/label.py",
        "1 · Label",
        "Which threshold τ labels closest to half of the training images true?",
        tuple(f"τ = {t:.2f}" for t in BALANCE_THRESHOLDS),
    ),
    Step(
        "tensor",
        "app_pages/tensor.py",
        "3 · Tensor",
        "How far is the quadratic form x̃ᵀ W_e′ᵀ B_a W_e′ x̃ from logit_a + 1?",
        (
            f"Equal up to rounding (below {EXACT:.0e})",
            f"Close, but not equal (below {CLOSE:g})",
            f"Only roughly equal ({CLOSE:g} or more): the form approximates the model",
        ),
    ),
    Step(
        "eigenvectors",
        "app_pages/eigenvectors.py",
        "4 · Eigenvectors",
        "What does weight decay do to the True − False spectrum (bias-free block)?",
        (
            "It concentrates it: fewer eigenvectors carry 90 % of Σλ²",
            "It leaves it about as concentrated",
            "It spreads it over more eigenvectors",
        ),
    ),
    Step(
        "truncation",
        "app_pages/truncation.py",
        "6 · Truncation",
        "How many eigenvectors of B₁ − B₀ does the model need to classify as well as in full?",
        (*(f"{low}" if low == high else f"{low} to {high}" for low, high in K_BANDS), "More than 20, or all of them"),
    ),
)
BY_ID: dict[str, Step] = {step.id: step for step in STEPS}


@dataclass(frozen=True)
class Question:
    """A step's question as one student sees it: worded for their screen, with its answer and explanation."""

    step: Step
    prompt: str  # the question, naming the settings it is about
    answer: int  # index into step.choices of the right choice, computed from the data
    explanation: tuple[str, str]  # two sentences, every number from the data
    about: str = "the settings on screen"  # what the answer is computed from, as the verdict names it

    def __post_init__(self) -> None:
        if not 0 <= self.answer < len(self.step.choices):
            raise ValueError(f"answer {self.answer} is not a choice of step {self.step.id!r}")


# --- the questions, each computed from what its page computes ----------------------------------


def true_fraction(sims: Similarities, threshold: float, include_inverse: bool) -> float:
    """The share of images the labelling rule calls true at this threshold."""
    return float(labels_from_similarities(sims, threshold, include_inverse).double().mean())


def balance_question(
    sims: Similarities, include_inverse: bool, threshold: float, target_index: int, digit: int
) -> Question:
    """Label: which of BALANCE_THRESHOLDS labels closest to half the images true, for this target and rule.

    `sims` are the training images' similarities with the target (the Label page's histogram), `threshold`
    the student's slider (the explanation says where it stands too).
    """
    fractions = [true_fraction(sims, t, include_inverse) for t in BALANCE_THRESHOLDS]
    answer = min(range(len(fractions)), key=lambda i: abs(fractions[i] - 0.5))
    pairs = zip(BALANCE_THRESHOLDS, fractions, strict=True)
    others = ", ".join(f"{t:.2f}: {percent(f)}" for i, (t, f) in enumerate(pairs) if i != answer)
    inverse = "or its inverse " if include_inverse else ""
    mine = true_fraction(sims, threshold, include_inverse)
    return Question(
        BY_ID["label"],
        f"An image is labelled true when its cosine similarity with the target (training image #{target_index}, "
        f"a handwritten {digit}) {inverse}exceeds τ. Which threshold labels closest to half of the "
        f"{len(sims.to_target):,} training images true?",
        answer,
        (
            f"At τ = {BALANCE_THRESHOLDS[answer]:.2f}, {percent(fractions[answer])} of the training images are "
            f"labelled true, the closest to half of the five (τ = {others}).",
            f"Raising τ can only label fewer images true; your slider's τ = {threshold:.2f} labels "
            f"{percent(mine)} true and {percent(1 - mine)} false.",
        ),
    )


def tensor_question(error: float, n_images: int) -> Question:
    """Tensor: how far the bias-augmented quadratic form is from logit + 1, given the page's measured error."""
    answer = 0 if error < EXACT else 1 if error < CLOSE else 2
    why = "with no approximation involved." if answer == 0 else "so a larger difference comes from the arithmetic."
    verdict = (
        "so the identity is exact: the difference is float64 rounding"
        if answer == 0
        else "more than rounding, so this model's form does not reproduce its logits exactly"
    )
    return Question(
        BY_ID["tensor"],
        f"Fold the biases into the weights and contract them into one matrix B_a per class. On {n_images} test "
        "images, how far will x̃ᵀ W_e′ᵀ B_a W_e′ x̃ be from the model's logit_a + 1?",
        answer,
        (
            f"The largest difference over {n_images} test images and both classes is {error:.1e}, {verdict}.",
            "A bilinear layer multiplies two linear functions of its input, so with a constant 1 appended the "
            f"whole model is one quadratic form, {why}",
        ),
    )


def weight_decay_question(rows: Sequence[DecayRow], threshold: float) -> Question | None:
    """Eigenvectors: what weight decay does to the True − False spectrum, between the two precomputed models at
    this threshold with weight decay 0 and PAPER_WEIGHT_DECAY (core.findings.decay_row of each); None if this
    server lacks either. The question names those two models: they need not be the model on screen."""
    by_decay = {row.weight_decay: row for row in rows}
    without, paper = by_decay.get(0.0), by_decay.get(PAPER_WEIGHT_DECAY)
    if without is None or paper is None:
        return None
    finding = weight_decay_finding([without, paper])
    answer = 0 if finding.concentrates else 2 if finding.spreads else 1
    verdict = ("concentrates", "leaves about as concentrated", "spreads")[answer]
    return Question(
        BY_ID["eigenvectors"],
        f"Two precomputed models share the grid threshold τ = {threshold:.2f} and the paper's other settings (the "
        f"Compare weight decays tab shows them; they need not be the model on screen): one trained with weight "
        f"decay {PAPER_WEIGHT_DECAY:g} (the paper's), the other with none. What does weight decay do to the "
        "spectrum of their bias-free True − False block?",
        answer,
        (
            f"With weight decay 0 the top eigenvalue carries {without.top_share:.0%} of Σλ² and {without.n_90} "
            f"eigenvectors reach 90 % of it; with weight decay {PAPER_WEIGHT_DECAY:g}, {paper.top_share:.0%} and "
            f"{paper.n_90}: weight decay {verdict} the spectrum.",
            f"The top eigenvector's |cos| with the target goes {without.bias_free_cos:.2f} → {paper.bias_free_cos:.2f} "
            f"in the bias-free block and {without.augmented_cos:.2f} → {paper.augmented_cos:.2f} in the augmented "
            f"matrix, while |b| goes {without.b_norm:.2f} → {paper.b_norm:.2f}.",
        ),
        about=f"the two precomputed models at τ = {threshold:.2f}",
    )


def k_choice(k_needed: int | None) -> int:
    """The truncation step's choice for the fewest eigenvectors needed (None: no truncation is close enough)."""
    if k_needed is not None:
        for i, (low, high) in enumerate(K_BANDS):
            if low <= k_needed <= high:
                return i
    return len(K_BANDS)


def truncation_question(curves: TruncationCurves, tolerance: float) -> Question:
    """Truncation: how many eigenvectors of B₁ − B₀ (largest |λ| first) match the full model within `tolerance`."""
    k_needed = smallest_k_within(curves, "true_minus_false", tolerance)
    n_all = int(curves.k[-1])
    if k_needed is None:
        first = (
            f"No truncation of the {n_all} eigenvectors of B₁ − B₀ comes within "
            f"{tolerance * 100:.1f} percentage points of the full model's "
            f"{curves.full_model:.2%} on {curves.n_images:,} test images."
        )
    else:
        reached = float(curves.true_minus_false[k_needed])
        first = (
            f"Keeping the top {k_needed} of the {n_all} eigenvectors of B₁ − B₀ classifies {reached:.2%} of the "
            f"{curves.n_images:,} test images correctly, within {tolerance * 100:.1f} percentage points of the full "
            f"model's "
            f"{curves.full_model:.2%}."
        )
    constant = "true" if curves.constant_answer else "false"
    return Question(
        BY_ID["truncation"],
        f"Keep only the k eigenvectors of B₁ − B₀ with the largest |λ| and classify the test images again. How "
        f"many of the {n_all} does your model need to come within {tolerance * 100:.1f} percentage points of its "
        "full accuracy?",
        k_choice(k_needed),
        (
            first,
            f"The most positive eigenvector alone, against a threshold refit on the "
            f"{'training' if curves.calibration_set == 'training' else 'test'} images, reaches "
            f"{curves.top_only_calibrated:.2%}; always answering {constant} scores {curves.constant_baseline:.2%}.",
        ),
    )


# --- progress in the URL -------------------------------------------------------------------------

Progress = tuple[tuple[str, int], ...]  # (step id, chosen index) per revealed step, in STEPS order


def ordered(picks: Mapping[str, int]) -> Progress:
    """Picks as Progress: known steps only, in the lesson's order (immutable: safe as a session default)."""
    return tuple((step.id, picks[step.id]) for step in STEPS if step.id in picks)


def format_progress(progress: Progress) -> str:
    """Progress as URL text, e.g. 'label-1.eigenvectors-0' ('' when nothing is revealed)."""
    return ".".join(f"{step}-{choice}" for step, choice in progress)


MAX_PROGRESS_TEXT = 100  # `picked=`: every step with a two-digit choice fits in far less


def parse_progress(text: str) -> Progress:
    """URL text back to Progress; ValueError (a reason for the student) on an unknown step or choice."""
    if len(text) > MAX_PROGRESS_TEXT:
        raise ValueError(f"is longer than the {MAX_PROGRESS_TEXT} characters every step's pick takes")
    picks: dict[str, int] = {}
    for part in filter(None, text.split(".")):
        step_id, _, choice = part.partition("-")
        step = BY_ID.get(step_id)
        if step is None:
            raise ValueError(f"names a step other than {', '.join(BY_ID)}")
        if not re.fullmatch(r"[0-9]{1,2}", choice) or not 0 <= int(choice) < len(step.choices):  # ASCII digits only
            raise ValueError(f"must give step {step_id} a choice from 0 to {len(step.choices) - 1}")
        picks[step_id] = int(choice)
    return ordered(picks)


# --- the room's votes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vote:
    """One student's prediction for one step, as revealed; `voter` is an opaque id that never leaves the server."""

    voter: str
    step: str
    choice: int
    right: int  # the right choice on that student's screen (it depends on their target and model)

    def __post_init__(self) -> None:
        step = BY_ID.get(self.step)
        if step is None or not (0 <= self.choice < len(step.choices) and 0 <= self.right < len(step.choices)):
            raise ValueError(f"not a vote of this lesson: {self.step!r} {self.choice} {self.right}")


def record(votes: tuple[Vote, ...], vote: Vote, cap: int) -> tuple[Vote, ...]:
    """The votes with this one added: one vote per voter and step (a new one replaces theirs), the newest `cap`."""
    kept = tuple(v for v in votes if (v.voter, v.step) != (vote.voter, vote.step))
    return (*kept, vote)[-cap:]


@dataclass(frozen=True)
class Tally:
    """How the room predicted one step."""

    step: Step
    predicted: tuple[int, ...]  # per choice: how many predicted it
    right_for: tuple[int, ...]  # per choice: for how many voters it was the right answer
    n_right: int  # voters whose prediction was right on their screen

    @property
    def n(self) -> int:
        return sum(self.predicted)

    def sentences(self, answers: bool) -> list[str]:
        """The tally in words (the chart's text equivalent); the right answers only if `answers`."""
        if not self.n:
            return ["Nobody has revealed this step yet."]
        top = max(range(len(self.predicted)), key=self.predicted.__getitem__)
        out = [
            f"{self.n} prediction(s); the most common: “{self.step.choices[top]}” ({self.predicted[top]} of {self.n})."
        ]
        if answers:
            right = [f"“{c}” for {k}" for c, k in zip(self.step.choices, self.right_for, strict=True) if k]
            out.append(
                f"Right answer on the students' screens: {', '.join(right)}; "
                f"{self.n_right} of {self.n} predicted right."
            )
        return out


def tally(votes: Sequence[Vote], step: Step) -> Tally:
    """The votes for one step, counted per choice."""
    mine = [v for v in votes if v.step == step.id]
    predicted, right_for = [0] * len(step.choices), [0] * len(step.choices)
    for v in mine:
        predicted[v.choice] += 1
        right_for[v.right] += 1
    return Tally(step, tuple(predicted), tuple(right_for), sum(v.choice == v.right for v in mine))
