from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlx
from mlx.errors import CheckpointError
from mlx.models import MLP, LinearRegression, load_model


def _trained_mlp(rng, steps=3, **kwargs):
    params = {
        "layer_sizes": [4, 5, 3],
        "output_activation": "softmax",
        "seed": 0,
        "optimizer_config": {"optimizer_type": "adam", "learning_rate": 0.01},
    }
    params.update(kwargs)
    model = MLP(**params)
    X = rng.standard_normal((10, params["layer_sizes"][0]))
    if params["output_activation"] == "softmax":
        y = rng.integers(0, params["layer_sizes"][-1], 10)
    else:
        y = rng.standard_normal((10, params["layer_sizes"][-1]))
    for _ in range(steps):
        model.train_step(X, y)
    return model, X, y


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    activation=st.sampled_from(["relu", "tanh", "sigmoid"]),
    dtype=st.sampled_from(["float64", "float32"]),
)
def test_round_trip_is_exact(tmp_path_factory, sizes, activation, dtype):
    rng = np.random.default_rng(0)
    model = MLP(
        layer_sizes=sizes,
        activation=activation,
        seed=1,
        dtype=dtype,
        optimizer_config={
            "optimizer_type": "rmsprop",
            "learning_rate": 0.01,
            "momentum": 0.5,
        },
    )
    X = rng.standard_normal((6, sizes[0]))
    model.train_step(X, rng.standard_normal((6, sizes[-1])))
    path = tmp_path_factory.mktemp("ckpt")
    model.save(path)
    for loaded in (
        load_model(path),
        _load_into(
            MLP(
                layer_sizes=sizes,
                activation=activation,
                dtype=dtype,
                optimizer_config={"optimizer_type": "rmsprop", "momentum": 0.5},
            ),
            path,
        ),
    ):
        assert isinstance(loaded, MLP) and loaded.is_trained
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        for name, value in model.params_.items():
            assert loaded.params_[name].dtype == value.dtype
            np.testing.assert_array_equal(loaded.params_[name], value)
        assert loaded.optimizer_state_.count == 1


def _load_into(model, path):
    model.load(path)
    return model


def test_files_and_config(tmp_path, rng):
    model, _, _ = _trained_mlp(rng)
    model.save(tmp_path / "ck")
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert names == ["config.json", "model.safetensors", "optimizer.safetensors"]
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["model_type"] == "mlp" and config["format_version"] == 1
    assert config["library_version"] == mlx.__version__
    assert config["architecture"]["layer_sizes"] == [4, 5, 3]
    assert config["hyperparameters"]["optimizer_config"]["optimizer_type"] == "adam"
    assert config["optimizer"]["optimizer_type"] == "adam"
    from safetensors.numpy import load_file

    tensors = load_file(str(tmp_path / "ck" / "model.safetensors"))
    assert {k: v.shape for k, v in tensors.items()} == {
        "layers.0.weight": (5, 4),
        "layers.0.bias": (5,),
        "layers.1.weight": (3, 5),
        "layers.1.bias": (3,),
    }
    assert all(v.dtype == np.float64 for v in tensors.values())
    optimizer = load_file(str(tmp_path / "ck" / "optimizer.safetensors"))
    assert "layers.0.weight.exp_avg" in optimizer


def test_tensors_load_into_torch_linear_layers(tmp_path, rng):
    torch = pytest.importorskip("torch")
    from safetensors.numpy import load_file

    model, X, _ = _trained_mlp(
        rng, output_activation=None, layer_sizes=[4, 6, 5, 2], activation="tanh"
    )
    model.save(tmp_path / "ck")
    tensors = load_file(str(tmp_path / "ck" / "model.safetensors"))
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 6),
        torch.nn.Tanh(),
        torch.nn.Linear(6, 5),
        torch.nn.Tanh(),
        torch.nn.Linear(5, 2),
    ).double()
    state = {
        f"{2 * int(k.split('.')[1])}.{k.split('.')[2]}": torch.tensor(v)
        for k, v in tensors.items()
    }
    net.load_state_dict(state)
    with torch.no_grad():
        np.testing.assert_allclose(
            net(torch.tensor(X)).numpy(), model.predict(X), rtol=1e-12
        )


def test_linear_regression_round_trip_and_torch(tmp_path, rng):
    torch = pytest.importorskip("torch")
    X = rng.standard_normal((30, 3))
    model = LinearRegression(l2_regularization=0.1).fit(X, X @ [1.0, 2.0, 3.0])
    model.save(tmp_path / "lr")
    loaded = LinearRegression()
    loaded.load(tmp_path / "lr")  # the README's pattern
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert isinstance(load_model(tmp_path / "lr"), LinearRegression)
    from safetensors.numpy import load_file

    tensors = load_file(str(tmp_path / "lr" / "model.safetensors"))
    linear = torch.nn.Linear(3, 1).double()
    linear.load_state_dict(
        {k.split(".")[1]: torch.tensor(v) for k, v in tensors.items()}
    )
    with torch.no_grad():
        np.testing.assert_allclose(
            linear(torch.tensor(X)).numpy()[:, 0], model.predict(X)
        )


def test_resume_is_exact(tmp_path, rng):
    X = rng.standard_normal((20, 4))
    y = rng.integers(0, 3, 20)
    straight, _, _ = _trained_mlp(rng, steps=0)
    for _ in range(6):
        straight.train_step(X, y)
    first, _, _ = _trained_mlp(rng, steps=0)
    for _ in range(3):
        first.train_step(X, y)
    first.save(tmp_path / "half")
    resumed = load_model(tmp_path / "half")
    for _ in range(3):
        resumed.train_step(X, y)
    for name, value in straight.params_.items():
        np.testing.assert_array_equal(resumed.params_[name], value)
    assert resumed.optimizer_state_.count == 6


def test_mismatched_architecture_names_both(tmp_path):
    MLP(layer_sizes=[10, 5, 1], seed=0).save(tmp_path / "ck")
    with pytest.raises(
        CheckpointError,
        match=r"checkpoint has layer_sizes \[10, 5, 1\], model has \[10, 3, 1\]",
    ):
        MLP(layer_sizes=[10, 3, 1]).load(tmp_path / "ck")
    with pytest.raises(
        CheckpointError, match="checkpoint has activation relu, model has tanh"
    ):
        MLP(layer_sizes=[10, 5, 1], activation="tanh").load(tmp_path / "ck")
    with pytest.raises(
        CheckpointError,
        match="holds a 'mlp' model; this model is a 'linear_regression'",
    ):
        LinearRegression().load(tmp_path / "ck")


def test_other_optimizer_state_is_skipped_unless_required(tmp_path, rng):
    model, X, _ = _trained_mlp(rng)  # adam
    model.save(tmp_path / "ck")
    sgd_model = MLP(layer_sizes=[4, 5, 3], output_activation="softmax")
    sgd_model.load(tmp_path / "ck")
    assert sgd_model.optimizer_state_ is None
    np.testing.assert_array_equal(sgd_model.predict(X), model.predict(X))
    with pytest.raises(CheckpointError, match="AdamState.*SGDState"):
        sgd_model.load(tmp_path / "ck", restore_optimizer=True)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("delete-model", "Cannot read"),
        ("delete-config", "config.json is missing"),
        ("truncate-model", "corrupted or truncated"),
        ("flip-byte", "corrupted or truncated"),
        ("truncate-optimizer", "corrupted or truncated"),
        ("bad-json", "corrupted"),
        ("future-version", "format version 99"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v else None,
)
def test_damaged_checkpoints_raise_checkpoint_error(tmp_path, rng, damage, match):
    model, _, _ = _trained_mlp(rng)
    path = tmp_path / "ck"
    model.save(path)
    if damage == "delete-model":
        (path / "model.safetensors").unlink()
    elif damage == "delete-config":
        (path / "config.json").unlink()
    elif damage.startswith("truncate"):
        target = path / (
            "model.safetensors" if "model" in damage else "optimizer.safetensors"
        )
        target.write_bytes(target.read_bytes()[:-7])
    elif damage == "flip-byte":
        data = bytearray((path / "model.safetensors").read_bytes())
        data[-3] ^= 0xFF
        (path / "model.safetensors").write_bytes(bytes(data))
    elif damage == "bad-json":
        (path / "config.json").write_text("{not json")
    else:
        config = json.loads((path / "config.json").read_text())
        config["format_version"] = 99
        (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=match):
        load_model(path)


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_model(tmp_path / "nowhere")


def test_save_leaves_no_temporary_files(tmp_path, rng):
    model, _, _ = _trained_mlp(rng)
    model.save(tmp_path / "ck")
    model.save(tmp_path / "ck")  # overwrite in place
    assert not [p for p in (tmp_path / "ck").iterdir() if p.name.startswith(".")]


def test_restored_optimizer_state_keeps_the_parameter_layout(tmp_path, rng):
    model, _, _ = _trained_mlp(rng)
    model.save(tmp_path / "ck")
    loaded = load_model(tmp_path / "ck")
    for name, value in loaded.params_.items():
        restored = loaded.optimizer_state_.exp_avg[name]
        assert restored.flags.f_contiguous == value.flags.f_contiguous


def _checkpoint_contents(path):
    """Tensors and metadata of a checkpoint's two files (safetensors may order
    metadata keys differently from one save to the next)."""
    from safetensors import safe_open

    contents = {}
    for name in ("model.safetensors", "optimizer.safetensors"):
        with safe_open(path / name, framework="numpy") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
            contents[name] = (handle.metadata(), tensors)
    return contents


def _same_contents(a, b):
    for name, (metadata, tensors) in a.items():
        other_metadata, other_tensors = b[name]
        if metadata != other_metadata or tensors.keys() != other_tensors.keys():
            return False
        if any(not np.array_equal(v, other_tensors[k]) for k, v in tensors.items()):
            return False
    return True


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_snapshot_writes_the_model_as_it_was_when_taken(tmp_path, rng, dtype):
    model, X, y = _trained_mlp(rng, dtype=dtype)
    model.save(tmp_path / "then")
    write = model.snapshot()
    model.train_step(X, y)  # weights and Adam moments move on
    write(tmp_path / "snapshot")
    model.save(tmp_path / "now")
    snapshot = _checkpoint_contents(tmp_path / "snapshot")
    assert _same_contents(snapshot, _checkpoint_contents(tmp_path / "then"))
    assert not _same_contents(snapshot, _checkpoint_contents(tmp_path / "now"))
