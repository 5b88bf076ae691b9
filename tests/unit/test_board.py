"""The class board's UI-free parts: nicknames, rows and their words (core.board), the room (server.classroom),
the server's listings of its models (server.registry) and who trained a job's model (server.jobs)."""

from __future__ import annotations

import re
import threading
import time

import pytest

from core.board import (
    ADJECTIVES,
    ANIMALS,
    PRECOMPUTED,
    UNKNOWN,
    appearance,
    board_row,
    caption,
    clock,
    counted,
    describe,
    label,
    nickname,
    points,
    table,
)
from core.config import Config
from core.identity import TrainedModel
from core.train import EpochMetrics, new_model
from server.classroom import ClassRoom, passcode_digest, passcode_matches
from server.jobs import TrainingJob, TrainingPool
from server.registry import Bounds, ModelRegistry, ModelSlots

SMALL = Config(d_hidden=4, epochs=3, n_train=4096, n_test=100, batch_size=512)


def history(epochs: int, done: int | None = None, val_acc: float = 0.9) -> tuple[EpochMetrics, ...]:
    return tuple(EpochMetrics(e, epochs, 0.5, 0.9, 0.5, val_acc, 0.1 * e, 1e-3) for e in range(1, (done or epochs) + 1))


def row(**changes):
    values = {
        "model_id": "0123456789ab",
        "config": SMALL.replace(threshold=0.35, weight_decay=0.5, noise_std=0.2, target_index=7),
        "history": history(3, val_acc=0.9512),
        "origin": "trained",
        "who": "brave otter",
        "added": 1_764_500_000.0,
        "cos": 0.8567,
        "eigenvalue": 0.4321,
    }
    values.update(changes)
    return board_row(**values)


# --- nicknames ---------------------------------------------------------------------------------------


def test_nicknames_are_deterministic_short_and_say_nothing_of_the_token():
    tokens = [f"{i:032x}" for i in range(300)]
    names = [nickname(token) for token in tokens]
    assert names == [nickname(token) for token in tokens], "the same session always gets the same name"
    for token, name in zip(tokens, names, strict=True):
        adjective, animal = name.split(" ")
        assert adjective in ADJECTIVES and animal in ANIMALS
        assert len(name) <= 20 and token not in name
    assert len(set(names)) > 250, "300 sessions get many different names (64 × 64 of them)"
    assert len(set(ADJECTIVES)) == len(ADJECTIVES) == 64 and len(set(ANIMALS)) == len(ANIMALS) == 64
    assert nickname("") == UNKNOWN


def test_a_nickname_is_not_a_plain_hash_of_the_token():
    """The salt: knowing the name scheme, a plain sha256(token) would pick other words for most tokens."""
    import hashlib

    def unsalted(token: str) -> str:
        digest = hashlib.sha256(token.encode()).digest()
        return f"{ADJECTIVES[digest[0] % 64]} {ANIMALS[digest[1] % 64]}"

    tokens = [f"token-{i}" for i in range(50)]
    assert sum(nickname(t) != unsalted(t) for t in tokens) > 40


# --- rows and their words -----------------------------------------------------------------------------


def test_a_row_takes_its_numbers_from_the_model():
    r = row()
    assert (r.epochs_done, r.val_acc, r.cos, r.eigenvalue) == (3, 0.9512, 0.8567, 0.4321)
    assert r.epochs == "3" and r.data == "4,096 / 100" and not r.precomputed
    assert r.settings == "target #7 · τ 0.35 · wd 0.5 · noise 0.2 · 3 epochs · 4,096 / 100"
    stopped = row(history=history(40, done=4), config=SMALL.replace(epochs=40), origin="stopped")
    assert stopped.epochs == "4 of 40" and stopped.epochs_done == 4
    grid = row(history=(), config=Config(), origin="grid", who=PRECOMPUTED, added=None)
    assert grid.precomputed and grid.val_acc is None and grid.data == "full MNIST" and grid.epochs == "100"


@pytest.mark.parametrize("cos", [-0.1, 1.5, float("nan")])
def test_a_row_refuses_a_cosine_out_of_range(cos):
    with pytest.raises(ValueError, match="must be in"):
        row(cos=cos)


def test_clock_times_in_the_students_zone_and_utc_otherwise():
    t = 1_764_500_000.0  # 2025-11-30 10:53:20 UTC
    assert clock(t) == "10:53:20 UTC"
    assert clock(t, "Europe/Berlin") == "11:53:20"
    assert clock(t, "America/New_York") == "05:53:20"
    for untrusted in ("../../etc/passwd", "/etc/localtime", "Not/AZone", "x" * 500, ""):
        assert clock(t, untrusted) == "10:53:20 UTC", untrusted
    assert clock(None) == "before class"


def test_caption_alt_text_and_label_carry_the_numbers():
    r = row()
    text = caption(r, "Europe/Berlin")
    assert text == "brave otter · 11:53:20 · τ 0.35 · wd 0.5 · |cos| 0.86"
    alt = describe(r, "Europe/Berlin", "red negative, white zero, blue positive")
    for number in re.findall(r"\d+\.\d+", text):  # the app's alt-text rule (tests/app/test_app_alt_text.py)
        assert number in alt
    assert "brave otter trained at 11:53:20" in alt and "validation accuracy 95.1%" in alt
    assert "eigenvalue +0.432" in alt and "|cos| with the centred target 0.86" in alt
    assert "red negative" in alt
    assert "stopped at" in describe(row(origin="stopped"))
    grid = row(origin="grid", who=PRECOMPUTED, added=None)
    assert caption(grid).startswith("precomputed · τ 0.35") and "the precomputed model" in describe(grid)
    assert label(r) == "brave otter, 10:53:20 UTC · τ 0.35 · wd 0.5 · |cos| 0.86"


def test_a_strips_caption_and_alt_text_carry_every_moments_cos():
    from core.snapshot import Snapshot, in_view

    def moment(step, cos, view="bias_free"):
        return Snapshot(step, step / 4, "true_minus_false", view, cos, 0.1, 0.5, 3, bytes(784))

    taken = [moment(0, 0.012), moment(1, 0.3, "augmented"), moment(2, 0.615), moment(8, 0.874)]
    kept = in_view(taken, "true_minus_false", "bias_free")
    assert [s.step for s in kept] == [0, 2, 8], "only the snapshots of the board's matrix"
    title, alt = appearance(row(), kept, "Europe/Berlin", "red negative, white zero, blue positive")
    assert title == "brave otter · 11:53:20 · τ 0.35 · wd 0.5 · |cos| 0.01 → 0.61 → 0.87"
    for number in re.findall(r"\d+\.\d+", title):  # the app's alt-text rule
        assert number in alt
    assert "brave otter trained at 11:53:20" in alt and "at 3 moments of training" in alt
    assert "at the start |cos| 0.01, epoch 0.50 |cos| 0.61, epoch 2 |cos| 0.87" in alt
    with pytest.raises(ValueError, match="at least one snapshot"):
        appearance(row(), [])


def test_table_and_points_keep_the_order_and_mark_pinned_and_yours():
    rows = [row(model_id="aaaaaaaaaaaa"), row(model_id="bbbbbbbbbbbb", who="calm yak"), row(model_id="c" * 12)]
    records = table(rows, active="bbbbbbbbbbbb", pinned="aaaaaaaaaaaa")
    assert [r["model"] for r in records] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "c" * 12]
    assert [r["status"] for r in records] == ["pinned", "yours", ""]
    assert table(rows, active="a" * 12, pinned="a" * 12)[0]["status"] == "pinned · yours"
    first = records[0]
    assert (first["who"], first["target"], first["threshold τ"], first["weight decay"], first["noise"]) == (
        "brave otter",
        7,
        0.35,
        0.5,
        0.2,
    )
    assert (first["epochs"], first["data (train / test)"], first["val acc"], first["|cos|"]) == (
        "3",
        "4,096 / 100",
        0.9512,
        0.8567,
    )
    dots = points([*rows, row(origin="grid", who=PRECOMPUTED, added=None)])
    assert [p["kind"] for p in dots] == ["trained in class"] * 3 + ["precomputed grid"]
    assert dots[1] | {"settings": None} == {
        "weight decay": 0.5,
        "|cos|": 0.8567,
        "threshold": 0.35,
        "who": "calm yak",
        "when": "10:53:20 UTC",
        "settings": None,
        "validation accuracy": 0.9512,
        "kind": "trained in class",
    }


# --- the room -----------------------------------------------------------------------------------------


def test_the_room_changes_atomically_and_counts_its_changes():
    room = ClassRoom()
    first = room.state()
    assert (first.pinned, first.hidden, first.answers_visible, first.revision) == (None, frozenset(), False, 0)
    room.pin("aaaaaaaaaaaa")
    room.clear(["b" * 12])
    room.clear(["c" * 12])
    room.show_answers(True)
    state = room.state()
    assert (state.pinned, state.hidden, state.answers_visible, state.revision) == (
        "aaaaaaaaaaaa",
        frozenset({"b" * 12, "c" * 12}),
        True,
        4,
    )
    assert first.revision == 0 and first.hidden == frozenset(), "a state is replaced, never mutated"
    room.unpin()
    assert room.state().pinned is None and room.answers_visible

    def hide(i: int) -> None:
        for j in range(50):
            room.clear([f"{i:06d}{j:06d}"])

    threads = [threading.Thread(target=hide, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(room.state().hidden) == 2 + 8 * 50, "no clear lost to another thread's"
    assert room.state().revision == 5 + 8 * 50


def test_passcodes_compare_exactly():
    assert passcode_matches("owl-42", "owl-42")
    assert not passcode_matches("owl-41", "owl-42") and not passcode_matches("", "owl-42")
    assert not passcode_matches("owl-42 ", "owl-42") and passcode_matches("héron", "héron")
    assert passcode_digest("owl-42") == passcode_digest("owl-42") != passcode_digest("owl-43")
    assert "owl-42" not in passcode_digest("owl-42")


# --- the server's listings ------------------------------------------------------------------------------


def trained(seed: int, origin: str = "trained", by: str = "", epochs_done: int | None = None) -> TrainedModel:
    config = SMALL.replace(seed=seed)
    return TrainedModel(new_model(config), config, history(3, epochs_done), origin, trained_by=by)


def test_the_registry_lists_its_models_newest_first_and_counts_changes():
    registry = ModelRegistry(None, max_models=3, bounds=Bounds(recent=0))  # no model is "recent": size alone
    assert registry.models() == [] and registry.revision == 0
    first = registry.add(trained(1, by="a"))
    time.sleep(0.01)
    second = registry.add(trained(2, by="b"))
    assert [e.trained for e in registry.models()] == [second, first]
    assert registry.models()[0].added >= registry.models()[1].added
    assert registry.revision == 2
    registry.add(trained(2))  # the same Config again: the first model stays, nothing changes
    assert registry.revision == 2 and registry.models()[0].trained.trained_by == "b"
    grid = registry.add(trained(3, origin="grid"))
    assert [e.trained for e in registry.models(("trained",))] == [second, first]
    assert [e.trained for e in registry.models(("grid",))] == [grid]
    registry.add(trained(4))  # past max_models: the oldest leaves, and that is a change too
    assert first not in [e.trained for e in registry.models()] and registry.revision == 4


def test_the_slots_list_by_arrival_and_a_use_is_no_change():
    slots = ModelSlots(max_models=2, bounds=Bounds(recent=0))
    first = slots.add(trained(1, origin="stopped", epochs_done=1))
    time.sleep(0.01)
    second = slots.add(trained(2, origin="stopped", epochs_done=2))
    revision = slots.revision
    assert slots.get(first.model_id) is first, "used: least recently used order changes..."
    assert slots.revision == revision, "...but not the board"
    assert [e.trained for e in slots.models()] == [second, first], "listed by arrival, not by use"
    slots.add(trained(3, origin="uploaded"))  # past max_models: the least recently used (second) leaves
    assert [e.trained.origin for e in slots.models()] == ["uploaded", "stopped"]
    assert [e.trained for e in slots.models(("stopped",))] == [first] and slots.revision == revision + 2


def test_a_job_credits_its_model_to_the_session_that_submitted_it():
    def instant(model, splits, config, should_stop):
        for epoch in range(1, config.epochs + 1):
            yield EpochMetrics(epoch, config.epochs, 0.5, 0.9, 0.5, 0.9, 0.1 * epoch, 1e-3)

    pool = TrainingPool(instant, lambda model: model, workers=1)
    job = pool.submit(SMALL.replace(seed=5), splits=None, follower="alice")
    pool.follow(job, "bob")  # a second student on the same settings (if it is still running)
    assert job.done.wait(10) and job.state == "finished"
    assert job.trained_by == "alice" and job.result.trained_by == "alice"

    followed = TrainingJob(SMALL, None, {"carol"})  # as conftest's running_job builds one
    assert followed.trained_by == "carol"
    followed.record(new_model(SMALL), history(3)[0])
    assert followed.model_so_far().trained_by == "carol"
    assert followed.model_so_far(trained_by="dave").trained_by == "dave", "a Stop credits who stopped it"
    assert "carol" not in repr(followed.model_so_far()), "a token is not printed with the model"


def test_a_count_agrees_with_its_noun():
    assert [counted(n, "model") for n in (0, 1, 4)] == ["0 models", "1 model", "4 models"]
