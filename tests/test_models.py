from __future__ import annotations

import numpy as np
import pytest

import mlx.models
from mlx.config.experiment import ModelConfig, freeze
from mlx.errors import CheckpointError, ModelError
from mlx.models import (
    IMAGE_FAMILIES,
    MLP,
    BaseModel,
    LinearRegression,
    get_model,
    load_model,
)

CUSTOM = "examples.custom_models:SoftmaxRegression"


def test_exports():
    assert set(mlx.models.__all__) == {
        "BaseModel",
        "IMAGE_FAMILIES",
        "LinearRegression",
        "MLP",
        "MODELS",
        "get_model",
        "load_model",
    }


def test_get_model_from_frozen_config_params():
    config = ModelConfig(
        name="mlp", params=freeze({"layer_sizes": [3, 4, 2], "seed": 1})
    )
    model = get_model(config.name, config.params)
    assert isinstance(model, MLP) and model.layer_sizes == [3, 4, 2]
    assert isinstance(
        get_model("linear_regression", {"l2_regularization": 0.5}), LinearRegression
    )
    assert isinstance(get_model("linear_regression"), LinearRegression)


@pytest.mark.parametrize(
    ("name", "params", "variant"),
    [
        ("resnet18", {}, "resnet18"),
        ("resnet", {"architecture": "resnet34"}, "resnet34"),
        ("mobilenet_v3_small", {}, "mobilenet_v3_small"),
    ],
)
def test_image_models_build_on_torch(name, params, variant):
    pytest.importorskip("torch")
    model = get_model(name, {"num_classes": 10, "device": "cpu", **params})
    assert model.model_type == "torch"
    assert model.get_params()["architecture"] == variant


def test_image_family_needs_a_variant():
    pytest.importorskip("torch")
    with pytest.raises(ModelError, match="resnet18, resnet34"):
        get_model("resnet", {"num_classes": 10})


def test_image_families_list_every_variant():
    assert IMAGE_FAMILIES["resnet"] == (
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
    )
    assert len(IMAGE_FAMILIES["efficientnet"]) == 8
    assert IMAGE_FAMILIES["mobilenet"] == (
        "mobilenet_v2",
        "mobilenet_v3_small",
        "mobilenet_v3_large",
    )


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("mpl", {}, "Unknown model 'mpl'.*Did you mean 'mlp'"),
        (
            "mlp",
            {"layer_sizes": [2, 1], "layer_size": 3},
            "Unknown parameter 'layer_size'.*'layer_sizes'",
        ),
        ("custom", {}, "needs params.class_path"),
        ("custom", {"class_path": "no_colon"}, "package.module:ClassName"),
        ("custom", {"class_path": "not_a_module_xyz:Model"}, "Cannot import module"),
        (
            "custom",
            {"class_path": "examples.custom_models:Missing"},
            "no attribute 'Missing'",
        ),
        (
            "custom",
            {"class_path": "collections:OrderedDict"},
            "not a subclass of mlx.models.BaseModel",
        ),
        ("custom", {"class_path": "mlx.models:BaseModel"}, "abstract"),
    ],
    ids=[
        "typo",
        "unknown-param",
        "no-class-path",
        "bad-path",
        "no-module",
        "no-attr",
        "not-subclass",
        "abstract",
    ],
)
def test_get_model_errors(name, params, match):
    with pytest.raises(ModelError, match=match):
        get_model(name, params)


def test_non_subclass_is_refused_before_instantiation(monkeypatch):
    import collections

    calls = []
    monkeypatch.setattr(
        collections, "Counter", type("Spy", (), {"__init__": lambda s: calls.append(1)})
    )
    with pytest.raises(ModelError, match="not a subclass"):
        get_model("custom", {"class_path": "collections:Counter"})
    assert calls == []


def test_worked_custom_example_trains_saves_and_loads(tmp_path, rng):
    model = get_model(
        "custom",
        {
            "class_path": CUSTOM,
            "n_features": 4,
            "n_classes": 3,
            "seed": 0,
            "optimizer_config": {"learning_rate": 0.5},
        },
    )
    assert isinstance(model, BaseModel) and model.task == "classification"
    centers = rng.standard_normal((3, 4)) * 3
    y = rng.integers(0, 3, 90)
    X = centers[y] + rng.standard_normal((90, 4)) * 0.3
    losses = [model.train_step(X, y)["loss"] for _ in range(20)]
    assert losses[-1] < losses[0]
    assert (model.predict(X).argmax(axis=1) == y).mean() > 0.9
    model.save(tmp_path / "custom")
    loaded = load_model(tmp_path / "custom")
    assert type(loaded).__name__ == "SoftmaxRegression" and loaded.n_features == 4
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(
        CheckpointError, match=r"'custom' \(examples.custom_models:SoftmaxRegression\)"
    ):
        MLP(layer_sizes=[4, 3]).load(tmp_path / "custom")


def test_example_yaml_names_the_example_class():
    yaml = pytest.importorskip("yaml")
    from mlx.utils.paths import repository_root

    document = yaml.safe_load(
        (repository_root() / "examples" / "custom_model.yaml").read_text()
    )
    params = dict(document["model"]["params"])
    assert document["model"]["name"] == "custom" and params["class_path"] == CUSTOM
    model = get_model("custom", params)
    assert model.n_parameters == 8 * 3 + 3


def test_base_model_contract():
    model = MLP(layer_sizes=[2, 2], seed=0)
    assert model.get_params()["layer_sizes"] == [2, 2]
    assert "MLP(layer_sizes=[2, 2]" in repr(model)
    assert model.closed_form is False
    with pytest.raises(ModelError, match="set_optimizer needs"):
        model.set_optimizer("adam")
