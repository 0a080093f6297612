"""Inputs that look valid but mean something else, or fail later inside a library:
they are refused up front with one located ``error:`` line, and nothing is created.

Covers the ``MLX_*`` environment variables (validated like config fields), the
ranges every backend takes (a seed torch cannot unpack, a size NumPy cannot
allocate), image folders with an empty or nested class, Parquet labels stored as a
pandas Categorical, weights of another architecture, and run names that cannot be
kept as they are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import REPO_ROOT, cli_env, run_cli, small_classification, write_config


def _refused(result, *parts: str) -> str:
    """The stderr of a refused command: exit 1, one ``error:`` line holding every
    part, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for part in parts:
        assert part in errors[0], (part, errors[0])
    return errors[0]


def _no_runs(root: Path) -> None:
    assert not (root / "outputs").exists()


# -- environment variables


_NUMBERS = ["abc", "0", "-5", "99999999999", " ", " 4", "1e3", "0x10", "１２", "4.0"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        *(("MLX_NUM_THREADS", v) for v in _NUMBERS),
        *(("MLX_DATA_WORKERS", v) for v in ("-1", "x", "100000", "١")),
        *(("MLX_MEMORY_LIMIT", v) for v in ("0", "1e9", "1GB", "9" * 30)),
        *(("MLX_OFFLINE", v) for v in ("maybe", " ", "2", "y es")),
        ("MLX_DATA_URL", "mirror.example.org/data"),
        ("MLX_DATA_URL", "file:///tmp/data"),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_a_bad_environment_variable_is_one_error_before_anything_is_made(
    tmp_path: Path, variable: str, value: str, dry_run: bool
) -> None:
    config = write_config(tmp_path / "c.yaml", small_classification())
    args = ["run-experiment", "--config", str(config), "--quiet"]
    env = cli_env(tmp_path, **{variable: value})
    result = run_cli([*args, "--dry-run"] if dry_run else args, tmp_path, env=env)
    _refused(result, f"{variable} must be", repr(value))
    _no_runs(tmp_path)


@pytest.mark.parametrize(
    "value", ["1", "yes", "TRUE", "On", "0", "false", "No", "off", ""]
)
def test_mlx_offline_takes_the_usual_booleans(tmp_path: Path, value: str) -> None:
    config = write_config(tmp_path / "c.yaml", small_classification())
    env = cli_env(tmp_path, MLX_OFFLINE=value)
    result = run_cli(
        ["run-experiment", "--config", str(config), "--dry-run"], tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr


def test_an_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", small_classification())
    env = cli_env(tmp_path, MLX_DATA_WORKERS="", MLX_MEMORY_LIMIT="", MLX_DATA_URL="")
    result = run_cli(
        ["run-experiment", "--config", str(config), "--dry-run"], tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("where", ["nonexistent/x", "afile"])
@pytest.mark.parametrize(
    "args",
    [["run-experiment", "probe", "--quiet"], ["run-experiment", "--dry-run"], ["runs"]],
    ids=["run", "dry-run", "runs"],
)
def test_an_mlx_root_that_is_no_directory_is_refused_and_never_created(
    tmp_path: Path, where: str, args: list
) -> None:
    (tmp_path / "afile").write_text("")
    env = cli_env(tmp_path, MLX_ROOT=str(tmp_path / where))
    result = run_cli(args, tmp_path, env=env)
    what = "does not exist" if where != "afile" else "is not a directory"
    _refused(result, "MLX_ROOT", repr(str(tmp_path / where)), what)
    assert not (tmp_path / "nonexistent").exists()
    _no_runs(tmp_path)


def test_a_misspelt_variable_is_pointed_out(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", small_classification())
    env = cli_env(tmp_path, MLX_NUM_THREAD="2")
    result = run_cli(
        ["run-experiment", "--config", str(config), "--dry-run"], tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert (
        "warning: environment variable MLX_NUM_THREAD is not one mlx reads; did you "
        "mean MLX_NUM_THREADS?" in result.stderr
    )


# -- ranges every backend takes


_HUGE = 2**64
_INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("training.seed", _HUGE, "at most 9223372036854775807 (2^63 - 1)"),
        ("training.seed", 2**63, "at most 9223372036854775807"),
        ("dataset.params.seed", 10**20, "at most 9223372036854775807"),
        ("model.params.seed", _HUGE, "at most 9223372036854775807"),
        ("training.epochs", 10**20, "at most 9223372036854775807"),
        ("training.batch_size", 10**20, "at most 9223372036854775807"),
        ("output.checkpoint_frequency", 10**20, "at most"),
        ("training.params.step_size", 10**20, "at most"),
        ("training.params.warmup_epochs", 10**20, "at most"),
        ("dataset.params.n_samples", 10**20, "at most"),
        ("model.params.layer_sizes", [8, 10**20, 3], "at most"),
        ("model.params.layer_sizes", [8, 10**11, 3], "over the 1.02e+03 GiB"),
        ("training.seed", -1, "must be an integer >= 0, got -1"),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_an_integer_no_backend_takes_is_refused_at_validation(
    tmp_path: Path, path: str, value: object, expected: str, dry_run: bool
) -> None:
    config = small_classification()
    section, *keys = path.split(".")
    target = config[section]
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value
    file = write_config(tmp_path / "c.yaml", config)
    args = ["run-experiment", "--config", str(file), "--quiet"]
    result = run_cli([*args, "--dry-run"] if dry_run else args, tmp_path)
    line = _refused(result, f"{file}:", path, expected)
    assert "Traceback" not in result.stderr and "torch/" not in line
    _no_runs(tmp_path)


def test_the_largest_seed_runs(tmp_path: Path) -> None:
    file = write_config(
        tmp_path / "c.yaml", small_classification(seed=_INT64_MAX, epochs=1)
    )
    result = run_cli(["run-experiment", "--config", str(file), "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("model.params.num_classes", 10**12, "in [1, 1000000]"),
        ("model.params.in_channels", 10**6, "in [1, 1024]"),
        ("dataset.params.image_size", 10**6, "in [8, 4096]"),
    ],
)
@pytest.mark.slow  # imports torch
def test_an_image_size_or_head_no_machine_can_hold_is_refused(
    tmp_path: Path, path: str, value: int, expected: str
) -> None:
    (tmp_path / "images" / "a").mkdir(parents=True)
    config = {
        "name": "img",
        "dataset": {"name": "imagenet", "path": "images", "params": {}},
        "model": {"name": "resnet18", "params": {}},
    }
    _, section, key = path.split(".")
    config[path.split(".")[0]][section][key] = value
    file = write_config(tmp_path / "c.yaml", config)
    result = run_cli(["run-experiment", "--config", str(file), "--dry-run"], tmp_path)
    _refused(result, f"{file}:", path, expected, str(value))


@pytest.mark.slow  # imports torch
def test_a_torch_model_seeded_with_the_largest_seed_trains(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    shutil.copytree(REPO_ROOT / "examples", tmp_path / "examples")
    config = small_classification(seed=_INT64_MAX, epochs=1, device="cpu")
    config["model"] = {
        "name": "custom",
        "params": {
            "class_path": "examples.torch_models:TinyMLP",
            "n_features": 8,
            "hidden": 4,
            "n_outputs": 3,
        },
    }
    file = write_config(tmp_path / "c.yaml", config)
    env = cli_env(tmp_path, OMP_NUM_THREADS="1")
    result = run_cli(
        ["run-experiment", "--config", str(file), "--quiet"], tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr


# -- image folders


def _png(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)


def _image_config(tmp_path: Path) -> Path:
    config = {
        "name": "img",
        "dataset": {"name": "imagenet", "path": "img", "params": {"image_size": 8}},
        "model": {
            "name": "mlp",
            "params": {"layer_sizes": [192, 4, 2], "output_activation": "softmax"},
        },
        "training": {"epochs": 1},
    }
    return write_config(tmp_path / "c.yaml", config)


def _folder(tmp_path: Path) -> Path:
    pytest.importorskip("PIL")
    root = tmp_path / "img"
    for split in ("train", "val"):
        for name in ("cat", "dog"):
            for i in range(2):
                _png(root / split / name / f"{i}.png")
    return root


@pytest.mark.parametrize("split", ["train", "val"])
def test_an_empty_class_directory_is_refused_with_the_folder_named(
    tmp_path: Path, split: str
) -> None:
    root = _folder(tmp_path)
    for image in (root / split / "dog").iterdir():
        image.unlink()
    (root / split / "dog" / "notes.txt").write_text("not an image")
    (root / split / "dog" / ".hidden.png").write_bytes(b"")
    config = _image_config(tmp_path)
    dry = run_cli(["run-experiment", "--config", str(config), "--dry-run"], tmp_path)
    assert "can run here: no: the dataset would not load: imagenet: found no" in (
        dry.stdout
    )
    assert str(root / split / "dog") in dry.stdout
    result = run_cli(["run-experiment", "--config", str(config), "--quiet"], tmp_path)
    _refused(result, str(root / split / "dog"), "ImageFolder")
    _no_runs(tmp_path)


def test_images_in_sub_folders_count_as_torchvision_counts_them(
    tmp_path: Path,
) -> None:
    root = _folder(tmp_path)
    dog = root / "train" / "dog"
    (dog / "deeper").mkdir()
    for image in sorted(dog.glob("*.png")):
        image.rename(dog / "deeper" / image.name)
    _png(root / "train" / ".ipynb_checkpoints" / "x.png")  # hidden: no class
    _png(root / "train" / "cat" / ".cache" / "y.png")  # hidden: not walked
    (root / "train" / "cat" / "loop").symlink_to(root / "train" / "cat")
    config = _image_config(tmp_path)
    result = run_cli(["run-experiment", "--config", str(config), "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr
    (data,) = (tmp_path / "outputs").glob("*/data.json")
    record = json.loads(data.read_text(encoding="utf-8"))
    assert record["preprocessing"]["labels"]["classes"] == ["cat", "dog"]
    split = record["preprocessing"]["split"]
    assert split["n_train"] + split["n_val"] == 4  # two cats, two dogs one deeper
    assert split["n_test"] == 4


def test_a_link_that_leads_nowhere_in_a_class_is_refused(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / "train" / "cat" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    config = _image_config(tmp_path)
    result = run_cli(["run-experiment", "--config", str(config), "--quiet"], tmp_path)
    _refused(result, str(root / "train" / "cat" / "gone.png"), "leads nowhere")
    _no_runs(tmp_path)


# -- run names


@pytest.mark.parametrize(
    "name",
    ["-rf", "--", ".hidden", "..", "a/b", "été", "a b", "x" * 101, "", "-"],
)
@pytest.mark.parametrize("how", ["positional", "config"])
def test_a_name_that_cannot_begin_its_run_id_as_it_is_is_refused(
    tmp_path: Path, name: str, how: str
) -> None:
    config = small_classification()
    if how == "config":
        config["name"] = name
        file = write_config(tmp_path / "c.yaml", config)
        args = ["run-experiment", "--config", str(file), "--quiet"]
    else:
        file = write_config(tmp_path / "c.yaml", config)
        args = ["run-experiment", "--config", str(file), "--quiet", "--", name]
    result = run_cli(args, tmp_path)
    _refused(result, "name must be a directory name", "starts with a letter")
    _no_runs(tmp_path)


@pytest.mark.parametrize("name", ["rf", "a.", "x-", "_tmp", "A.b_c-1", "x" * 100])
def test_a_kept_name_begins_its_run_id_unchanged(tmp_path: Path, name: str) -> None:
    config = small_classification(epochs=1)
    config["name"] = name
    file = write_config(tmp_path / "c.yaml", config)
    result = run_cli(["run-experiment", "--config", str(file), "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    (run,) = (tmp_path / "outputs").iterdir()
    assert run.name.startswith(name + "-") and len(run.name) == len(name) + 21


# -- Parquet columns written from pandas Categoricals


@pytest.mark.parametrize(
    "labels",
    [["cat", "dog"] * 20, [3, 7] * 20],
    ids=["strings", "integers"],
)
def test_a_categorical_label_column_in_parquet_trains(
    tmp_path: Path, labels: list
) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {
            "x": [float(i % 5) for i in range(40)],
            "z": pd.Categorical([1.5, 2.5] * 20),
            "label": pd.Categorical(labels),
        }
    )
    frame.to_parquet(tmp_path / "d.parquet")
    config = small_classification(epochs=1)
    config["dataset"] = {"name": "custom", "path": "d.parquet", "params": {}}
    config["model"]["params"]["layer_sizes"] = [2, 4, 2]
    file = write_config(tmp_path / "c.yaml", config)
    result = run_cli(["run-experiment", "--config", str(file), "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_missing_label_in_a_categorical_column_is_named(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 4.0], "label": pd.Categorical(["a", None, "b", "a"])}
    )
    frame.to_parquet(tmp_path / "d.parquet")
    config = small_classification(epochs=1)
    config["dataset"] = {"name": "custom", "path": "d.parquet", "params": {}}
    config["model"]["params"]["layer_sizes"] = [1, 4, 2]
    file = write_config(tmp_path / "c.yaml", config)
    result = run_cli(["run-experiment", "--config", str(file), "--quiet"], tmp_path)
    _refused(result, "d.parquet: row 1: target 'label' is missing")
    _no_runs(tmp_path)


# -- torch modules whose outputs do not fit, and weights of another architecture

_MODULE = """
import torch
from torch import nn

FORCE = None


class Net(nn.Module):
    def __init__(self, n_features=8, n_classes=3, mode="ok"):
        super().__init__()
        self.lin = nn.Linear(n_features, n_classes)
        self.mode = FORCE or mode
        self.calls = 0
        self.first = None

    def forward(self, x):
        out = self.lin(x)
        self.calls += self.training
        n = x.shape[0]
        self.first = self.first or n
        m = self.mode
        if m == "wide" or (m == "later" and self.calls >= 4):
            return torch.cat([out, out[:, :1]], dim=1)
        if m == "last" and n < self.first:
            return torch.cat([out, out[:, :1]], dim=1)
        if m == "eval" and not self.training:
            return out[:, :2]
        if m == "flat":
            return out[:, 0]
        if m == "extra":
            return out[:, :, None]
        if m == "int":
            return out.long()
        if m == "complex":
            return out.to(torch.complex64)
        if m == "tuple":
            return out, out
        return out
"""


def _torch_run(tmp_path: Path, regression: bool = False, **params: object) -> Path:
    pytest.importorskip("torch")
    (tmp_path / "shapes.py").write_text(_MODULE)
    config = small_classification(epochs=2, device="cpu", batch_size=32)
    config["dataset"]["params"]["n_samples"] = 100
    if regression:
        config["dataset"] = {
            "name": "synthetic_regression",
            "params": {"n_samples": 100, "n_features": 8},
        }
    config["model"] = {
        "name": "custom",
        "params": {"class_path": "shapes:Net", **params},
    }
    return write_config(tmp_path / "c.yaml", config)


def _failed_run(tmp_path: Path, result, *parts: str) -> None:
    """A run that failed with one error line holding ``parts``, recorded in its
    summary.json."""
    line = _refused(result, *parts)
    (summary,) = (tmp_path / "outputs").glob("*/summary.json")
    record = json.loads(summary.read_text(encoding="utf-8"))
    assert record["status"] == "failed"
    assert line.removeprefix("error: ") in record["error"]


@pytest.mark.slow  # imports torch
@pytest.mark.parametrize(
    ("mode", "parts"),
    [
        ("wide", ["shape (32, 4) at training step 1 (a batch of 32)", "(32, 3)"]),
        ("flat", ["shape (32,) at training step 1", "(32, 3)"]),
        ("extra", ["shape (32, 3, 1) at training step 1", "(32, 3)"]),
        ("later", ["shape (32, 4) at training step 4 (a batch of 32)", "(32, 3)"]),
        ("last", ["(16, 4) at training step 3 (a batch of 16)", "(16, 3), one per"]),
        (
            "eval",
            ["shape (", ", 2) in eval mode (validation or prediction; samples 1-"],
        ),
        ("int", ["outputs of dtype int64 at training step 1", "floating-point"]),
        ("complex", ["outputs of dtype complex64 at training step 1"]),
        ("tuple", ["returned a tuple from forward at training step 1"]),
    ],
)
def test_a_module_whose_outputs_do_not_fit_is_named_with_the_batch(
    tmp_path: Path, mode: str, parts: list[str]
) -> None:
    config = _torch_run(tmp_path, mode=mode)
    result = run_cli(["run-experiment", "--config", str(config), "--quiet"], tmp_path)
    _failed_run(tmp_path, result, "shapes:Net returned", *parts)
    assert "functional.py" not in result.stderr


@pytest.mark.slow  # imports torch
@pytest.mark.parametrize(
    ("outputs", "shape"), [(2, "(32, 2)"), (3, "(32, 3)")], ids=["two", "three"]
)
def test_regression_outputs_of_another_width_are_named(
    tmp_path: Path, outputs: int, shape: str
) -> None:
    config = _torch_run(tmp_path, regression=True, n_classes=outputs)
    result = run_cli(["run-experiment", "--config", str(config), "--quiet"], tmp_path)
    _failed_run(
        tmp_path,
        result,
        f"shapes:Net returned outputs of shape {shape} at training step 1",
        "regression needs values of shape (32,) or (32, 1)",
    )


@pytest.mark.slow  # imports torch
def test_eval_names_a_module_whose_eval_outputs_changed(tmp_path: Path) -> None:
    config = _torch_run(tmp_path)
    result = run_cli(["run-experiment", "--config", str(config), "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "outputs").iterdir()
    (tmp_path / "shapes.py").write_text(
        _MODULE.replace("FORCE = None", 'FORCE = "eval"')
    )
    result = run_cli(["eval", str(run)], tmp_path)
    _refused(result, "shapes:Net returned outputs of shape (", ", 2) in eval mode")
    assert not (run / "evals").exists() or not any((run / "evals").iterdir())


_DEEP = _MODULE.replace(
    "self.lin = nn.Linear(n_features, n_classes)",
    "self.lin = nn.Sequential(*(nn.Linear(n_features, n_features) for _ in range("
    "40)), nn.Linear(n_features, n_classes))",
)
_WIDER = _MODULE.replace(
    "self.lin = nn.Linear(n_features, n_classes)",
    "self.lin = nn.Linear(n_features + 1, n_classes)",
)


@pytest.mark.slow  # imports torch
@pytest.mark.parametrize(
    ("source", "summary"),
    [
        (
            _DEEP,
            "82 missing (lin.0.weight, lin.0.bias, lin.1.weight, ...); "
            "2 unexpected (lin.bias, lin.weight)",
        ),
        (_WIDER, "1 of another shape (lin.weight (3, 8) for (3, 9))"),
    ],
    ids=["deeper", "wider"],
)
@pytest.mark.parametrize("command", ["eval", "resume"])
def test_weights_of_another_architecture_are_summarised_with_the_file(
    tmp_path: Path, source: str, summary: str, command: str
) -> None:
    config = _torch_run(tmp_path)
    result = run_cli(["run-experiment", "--config", str(config), "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "outputs").iterdir()
    (tmp_path / "shapes.py").write_text(source)
    if command == "eval":
        args = ["eval", str(run)]
    else:
        args = ["run-experiment", "--resume", str(run), "--set", "training.epochs=3"]
    before = sorted(p.name for p in run.rglob("*"))
    result = run_cli(args, tmp_path)
    line = _refused(result, "model.safetensors: the checkpoint's tensors", summary)
    assert str(run) in line and len(line) < 600
    assert "another architecture" in line
    if command == "eval":
        assert sorted(p.name for p in run.rglob("*")) == before


@pytest.mark.slow  # imports torch, builds a resnet18
@pytest.mark.parametrize("mismatch", ["names", "shapes"])
def test_a_pretrained_file_of_another_model_is_summarised_with_the_file(
    tmp_path: Path, mismatch: str
) -> None:
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    _folder(tmp_path)
    state = torchvision.models.resnet18().state_dict()
    if mismatch == "names":
        state = {f"backbone.{k}": v for k, v in state.items()}
    else:
        state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(state, cache / url.rsplit("/", 1)[1])
    config = {
        "name": "img",
        "dataset": {"name": "imagenet", "path": "img", "params": {"image_size": 8}},
        "model": {"name": "resnet18", "params": {"pretrained": True}},
        "training": {"epochs": 1, "device": "cpu"},
    }
    file = write_config(tmp_path / "c.yaml", config)
    env = cli_env(tmp_path, TORCH_HOME=str(tmp_path / "torch"), MLX_OFFLINE="1")
    result = run_cli(
        ["run-experiment", "--config", str(file), "--quiet"], tmp_path, env=env
    )
    expected = {
        "names": "122 missing (conv1.weight, bn1.weight, bn1.bias, ...)",
        "shapes": "1 of another shape (layer1.0.conv1.weight (64, 64, 1, 1) for "
        "(64, 64, 3, 3))",
    }[mismatch]
    line = _refused(result, f"{cache / url.rsplit('/', 1)[1]}: ", expected)
    assert "the pretrained weights do not fit resnet18" in line and len(line) < 600
