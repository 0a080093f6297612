"""The dry-run plan: parameter counts, shapes, outputs and runnability."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from data_source import data_source

from mlx.config import ConfigWarning, ModelConfig, default_config, parse_config
from mlx.experiment.plan import make_plan, parameter_count, render_dry_run


def test_mlp_parameter_count_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    sizes = [20, 64, 32, 3]
    layers = [torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    expected = sum(p.numel() for layer in layers for p in layer.parameters())
    model = ModelConfig("mlp", params={"layer_sizes": sizes})
    assert parameter_count(model, 20) == expected == 3523


def test_linear_regression_parameter_count() -> None:
    model = ModelConfig("linear_regression")
    assert parameter_count(model, 7) == 8
    assert parameter_count(model, None) is None
    assert parameter_count(ModelConfig("resnet18"), 784) is None


def test_plan_of_default(tmp_path: Path) -> None:
    plan = make_plan(default_config("demo", root=tmp_path))
    assert plan.parameter_count == (20 + 1) * 32 + (32 + 1) * 3
    assert plan.runnable
    assert plan.run_directory == f"{tmp_path.resolve()}/outputs/demo-<timestamp>-xxxx/"
    assert plan.dataset.n_features == 20


def _config(tmp_path: Path, dataset: dict, model: dict):
    data = {"name": "p", "dataset": dataset, "model": model}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return parse_config(data, root=tmp_path)


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty dataset cache and a loopback mirror that answers: mnist with
    ``download: true`` can run here."""
    monkeypatch.setenv("MLX_DATA_DIR", str(tmp_path / "cache"))
    with data_source(200) as server:
        monkeypatch.setenv("MLX_DATA_URL", server.url)
        yield


_FETCHED_MNIST = {"name": "mnist", "params": {"download": True}}


@pytest.mark.usefixtures("mirror")
def test_image_model_plan_counts_torchvision_parameters(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    config = _config(tmp_path, _FETCHED_MNIST, {"name": "resnet18"})
    plan = make_plan(config)
    assert plan.runnable
    reference = torchvision.models.resnet18(num_classes=10)
    reference.conv1 = reference.conv1.__class__(1, 64, 7, 2, 3, bias=False)
    assert plan.parameter_count == sum(p.numel() for p in reference.parameters())
    text = render_dry_run(config)
    assert "can run here: yes" in text
    assert "70,000 samples x 784 features" in text
    assert "input:        1 x 28 x 28 (C x H x W)" in text
    assert "precision:    32" in text
    size = sum(t.numel() * 4 for t in reference.state_dict().values())
    assert size < 50 * 2**20
    assert f"model.safetensors about {size / 2**20:.1f} MiB" in text


@pytest.mark.usefixtures("mirror")
def test_custom_model_without_class_path(tmp_path: Path) -> None:
    config = _config(tmp_path, {"name": "mnist"}, {"name": "custom"})
    assert "needs model.params.class_path" in (make_plan(config).blocker or "")
    config = _config(
        tmp_path,
        {"name": "mnist"},
        {"name": "custom", "params": {"class_path": "a.b:C"}},
    )
    assert "there is no module 'a'" in (make_plan(config).blocker or "")
    config = _config(
        tmp_path,
        _FETCHED_MNIST,
        {
            "name": "custom",
            "params": {"class_path": "examples.custom_models:SoftmaxRegression"},
        },
    )
    assert make_plan(config).runnable


def test_unknown_shape_is_said_plainly(tmp_path: Path) -> None:
    # a data file that does not exist yet: nothing to read the shape from
    config = _config(
        tmp_path,
        {"name": "custom", "path": "later.csv"},
        {"name": "mlp", "params": {"layer_sizes": [1, 1]}},
    )
    text = render_dry_run(config)
    assert "shape:        unknown until the files are read" in text
    assert "memory:       unknown until the files are read" in text


def test_dry_run_text_starts_with_the_resolved_config(tmp_path: Path) -> None:
    config = default_config("demo", root=tmp_path)
    text = render_dry_run(config)
    head, _, plan = text.partition("\nplan (dry run")
    assert yaml.safe_load(head) == config.to_dict()
    assert "layer_sizes: [20, 32, 3]" in head
    assert "771 trainable parameters" in plan
