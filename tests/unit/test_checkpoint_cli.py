"""Checkpoints round-trip and reject bad files; the reproduce CLI validates its arguments."""

import dataclasses
import json
import math
import pickle
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save

from core import reference_train, reproduce
from core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from core.config import Config, preset
from core.reproduce import main, parse_args
from core.train import new_model


@pytest.fixture(scope="module")
def saved():
    config = Config(d_hidden=8, epochs=3)
    model = new_model(config)
    return model, config, save_checkpoint(model, config)


def test_round_trip(saved):
    model, config, data = saved
    loaded, loaded_config, history = load_checkpoint(data)
    assert loaded_config == config and history == []
    x = torch.rand(4, 784)
    assert torch.equal(loaded(x), model(x))


SMALL = Config(d_hidden=8)


def _with(tensors, config=SMALL, fmt="bilinear-eigen-lab/1"):
    return st_save(tensors, metadata={"format": fmt, "config": json.dumps(config.to_dict())})


def _good_tensors():
    return {k: v.clone() for k, v in new_model(Config(d_hidden=8)).state_dict().items()}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.pop("head.weight"), "missing \\['head.weight'\\]"),
        (lambda t: t.update(extra=torch.zeros(1)), "unexpected \\['extra'\\]"),
        (lambda t: t.update({"embed.weight": torch.zeros(8, 100)}), "embed.weight has shape"),
        (lambda t: t.update({"head.weight": torch.zeros(2, 8, dtype=torch.float64)}), "dtype"),
        (lambda t: t["bilinear.bias"].__setitem__(0, float("nan")), "NaN"),
    ],
)
def test_bad_tensors_are_rejected(mutate, message):
    tensors = _good_tensors()
    mutate(tensors)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(_with(tensors))


def test_pickles_are_refused_without_unpickling(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(pickle.dumps(Boom()))
    torch.save({"w": torch.zeros(1)}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint((tmp_path / "m.pt").read_bytes())


def test_other_bad_files(saved):
    _, _, data = saved
    with pytest.raises(CheckpointError, match="too short"):
        load_checkpoint(b"abc")
    with pytest.raises(CheckpointError, match="header length"):
        load_checkpoint(b"\xff" * 64)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(data[:-100])
    with pytest.raises(CheckpointError, match="at most"):
        load_checkpoint(data, max_bytes=1000)
    with pytest.raises(CheckpointError, match="not a Bilinear Eigen Lab checkpoint"):
        load_checkpoint(_with(_good_tensors(), fmt="someone-else"))
    bad_config = st_save(
        _good_tensors(), metadata={"format": "bilinear-eigen-lab/1", "config": json.dumps({"threshold": 7})}
    )
    with pytest.raises(CheckpointError, match="threshold must be in"):
        load_checkpoint(bad_config)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "-1"], "epochs must be"),
        (["--epochs", "0"], "epochs must be"),
        (["--threshold", "1.5"], "threshold must be in"),
        (["--target-index", "60000"], "target index must be"),
        (["--epochs", "abc"], "invalid int value"),
        (["--loop", "slow"], "invalid choice"),
    ],
)
def test_cli_rejects_bad_arguments(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code != 0
    assert message in capsys.readouterr().err


def test_cli_writes_the_promised_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(
        [
            "--epochs",
            "2",
            "--n-train",
            "4096",
            "--n-test",
            "1000",
            "--batch-size",
            "512",
            "--json",
            str(out),
            "--save",
            str(tmp_path / "m.safetensors"),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    for key in ["config", "val_acc", "train_acc", "positive_fraction", "seconds", "train_seconds", "preset"]:
        assert key in result
    assert 0 < result["train_seconds"] <= result["seconds"] and result["preset"] == "paper"
    assert result["loop"] == "fast"  # the default: the app's loop
    assert result["reconstruction_max_abs_err"] < 1e-4
    assert set(result["directions"]) == {"true", "false", "true_minus_false"}
    for direction in result["directions"].values():
        values = direction["eigenvalues"]
        assert len(values) == 65 and values == sorted(values, reverse=True)
        assert 0 <= direction["top_cos_centered_target"] <= 1
        bias_free = direction["bias_free"]  # the hidden block B[:-1, :-1]: one eigenvalue fewer
        assert len(bias_free["eigenvalues"]) == 64 and 0 <= bias_free["top_cos_centered_target"] <= 1
    assert "epoch   2/2" in capsys.readouterr().err
    load_checkpoint((tmp_path / "m.safetensors").read_bytes())


def test_cli_loop_flag_trains_with_the_reference_loop(tmp_path, monkeypatch, capsys):
    """--loop reference runs core.reference_train.train (recorded here), and the JSON says which loop ran."""
    epochs = []

    def recording(model, splits, config, should_stop=None):
        for metrics in reference_train.train(model, splits, config, should_stop):
            epochs.append(metrics.epoch)
            yield metrics

    monkeypatch.setitem(reproduce.LOOPS, "reference", recording)
    out = tmp_path / "r.json"
    args = ["--loop", "reference", "--epochs", "2", "--n-train", "2048", "--n-test", "500", "--batch-size", "512"]
    assert main([*args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert epochs == [1, 2] and result["loop"] == "reference"
    assert [m["epoch"] for m in result["history"]] == [1, 2] and 0 <= result["val_acc"] <= 1
    assert "epoch   2/2" in capsys.readouterr().err


def test_cli_flags_are_the_config_fields_and_presets_are_the_apps():
    """Every Config field is a flag (include_inverse too); --preset starts from core.config.PRESETS."""
    config, args = parse_args(["--no-include-inverse", "--seed", "3"])
    assert config == Config(include_inverse=False, seed=3) and args.preset == "paper" and args.loop == "fast"
    config, _ = parse_args(["--preset", "quick", "--weight-decay", "2"])
    assert config == preset("quick", weight_decay=2.0)
    assert parse_args(["--noise-sampler", "kornia"])[0].noise_sampler == "kornia"
    for f in dataclasses.fields(Config):
        assert f.metadata["help"], f"{f.name} has its help text in one place"


GOOD_EPOCH = {
    "epoch": 1,
    "epochs": 2,
    "train_loss": 0.5,
    "train_acc": 0.8,
    "val_loss": 0.4,
    "val_acc": 0.9,
    "seconds": 1.0,
    "lr": 1e-3,
}


def _with_metadata(config: dict, history) -> bytes:
    """A checkpoint whose tensors are valid, with the given (maybe lying) metadata."""
    model = new_model(Config(d_hidden=8, epochs=2))
    tensors = {name: t.detach().contiguous() for name, t in model.state_dict().items()}
    return st_save(
        tensors,
        metadata={"format": "bilinear-eigen-lab/1", "config": json.dumps(config), "history": json.dumps(history)},
    )


@pytest.mark.parametrize(
    "config_changes, history, reason",
    [
        ({"target_index": 6.5}, [], "target_index must be a whole number"),
        ({"target_index": True}, [], "target_index must be a whole number"),
        ({"threshold": "0.4"}, [], "threshold must be a finite number"),
        ({}, [{**GOOD_EPOCH, "val_acc": "abc"}], "val_acc must be a finite number"),
        ({}, [{**GOOD_EPOCH, "val_acc": float("inf")}], "val_acc must be a finite number"),
        ({}, [{**GOOD_EPOCH, "val_acc": 1.5}], "val_acc is an accuracy"),
        ({}, [{**GOOD_EPOCH, "epoch": 2}], "record 1 is epoch 2 of 2"),
        ({}, [{**GOOD_EPOCH, "epochs": 40}], "record 1 is epoch 1 of 40, expected epoch 1 of 2"),
        ({}, [{**GOOD_EPOCH, "extra": 1}], "must have exactly the keys"),
        ({}, {"epoch": 1}, "it is not a list"),
    ],
)
def test_metadata_that_lies_is_rejected(config_changes, history, reason):
    data = _with_metadata({**Config(d_hidden=8, epochs=2).to_dict(), **config_changes}, history)
    with pytest.raises(CheckpointError, match=re.escape(reason)):
        load_checkpoint(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(
    field=st.sampled_from(sorted(Config().to_dict())),
    value=JSON,
    epoch_field=st.sampled_from(sorted(GOOD_EPOCH)),
    epoch_value=JSON,
)
def test_any_metadata_is_either_rejected_or_valid(field, value, epoch_field, epoch_value):
    """Whatever JSON a file carries in one config field and one epoch field: a CheckpointError with a
    reason, or a model whose config passes Config's own rules and whose history is finite and consistent."""
    config = {**Config(d_hidden=8, epochs=2).to_dict(), field: value}
    history = [{**GOOD_EPOCH, epoch_field: epoch_value}]
    try:
        _, loaded, epochs = load_checkpoint(_with_metadata(config, history))
    except CheckpointError as error:
        assert str(error)
        return
    assert loaded == Config.from_dict(loaded.to_dict()) and loaded.d_hidden == 8
    for m in epochs:
        assert all(math.isfinite(v) for v in m.to_dict().values()) and m.epochs == loaded.epochs


def test_a_checkpoint_whose_header_length_looks_like_a_pickle_still_loads():
    """A 640-byte header starts the file with b"\\x80\\x02", a pickle's first two bytes: it is still ours."""
    model = new_model(Config(d_hidden=8))
    data = b""
    for pad in range(400):
        data = st_save(
            {name: t.detach().contiguous() for name, t in model.state_dict().items()},
            metadata={
                "format": "bilinear-eigen-lab/1",
                "config": json.dumps(Config(d_hidden=8).to_dict()),
                "history": "[]",
                "pad": "x" * pad,
            },
        )
        if data[:2] == b"\x80\x02":
            break
    assert data[:2] == b"\x80\x02", "found a padding that gives the header 640 + 65536 k bytes"
    _, config, _ = load_checkpoint(data)
    assert config == Config(d_hidden=8)
