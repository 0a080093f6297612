"""The dry run tells the truth about the data and says it in its exit status: 0
valid and can run here, 1 invalid config, 3 valid but cannot run here (a file
missing or unreadable, a download source that does not answer). A run looks at its
data before anything imports torch, and a download error keeps its whole cause."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from data_source import closed_port_url, data_source
from helpers import cli_env, run_cli, write_config
from image_data import write_cifar10, write_mnist

MNIST_ARCHIVES = [
    "/train-images-idx3-ubyte.gz",
    "/train-labels-idx1-ubyte.gz",
    "/t10k-images-idx3-ubyte.gz",
    "/t10k-labels-idx1-ubyte.gz",
]


def _mnist(download: bool, **dataset: object) -> dict:
    """mnist into a NumPy MLP: its plan imports neither torch nor the data."""
    return {
        "name": "m",
        "dataset": {"name": "mnist", "params": {"download": download}, **dataset},
        "model": {
            "name": "mlp",
            "params": {"layer_sizes": [784, 10], "output_activation": "softmax"},
        },
        "training": {"epochs": 1, "batch_size": 16},
        "output": {"directory": "outputs"},
    }


def _dry(root: Path, config: dict, *extra: str, **env: str):
    write_config(root / "c.yaml", config)
    args = ["run-experiment", "--config", "c.yaml", "--dry-run", *extra]
    return run_cli(args, root, env=cli_env(root, **env))


def _verdict(done: subprocess.CompletedProcess) -> str:
    (line,) = [x for x in done.stdout.splitlines() if "can run here:" in x]
    return line.split("can run here:", 1)[1].strip()


def _cannot_run(done: subprocess.CompletedProcess, *needles: str) -> str:
    """The reason of a dry run that says no: exit 3, the plan's verdict on stdout
    and the same reason as one error line on stderr."""
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    verdict = _verdict(done)
    assert verdict.startswith("no: ")
    reason = verdict[len("no: ") :]
    errors = [x for x in done.stderr.splitlines() if not x.startswith("warning: ")]
    assert errors == [f"error: cannot run here: {reason}"]
    for needle in needles:
        assert needle in reason, reason
    return reason


def _empty_cache(root: Path) -> dict[str, str]:
    return {"MLX_DATA_DIR": str(root / "cache")}


# -- exit statuses -------------------------------------------------------------------


def test_a_runnable_config_exits_0(tmp_path: Path) -> None:
    write_mnist(tmp_path / "cache" / "mnist", n_train=8, n_test=4)
    done = _dry(tmp_path, _mnist(False), **_empty_cache(tmp_path))
    assert done.returncode == 0, done.stderr
    assert _verdict(done) == "yes"
    assert done.stderr == ""


def test_an_invalid_config_exits_1_and_plans_nothing(tmp_path: Path) -> None:
    config = _mnist(False)
    config["training"]["epochs"] = -3
    done = _dry(tmp_path, config, **_empty_cache(tmp_path))
    assert done.returncode == 1
    assert "training.epochs" in done.stderr and "cannot run here" not in done.stderr
    assert "plan (dry run" not in done.stdout


def test_mnist_without_files_or_download_cannot_run(tmp_path: Path) -> None:
    done = _dry(tmp_path, _mnist(False), **_empty_cache(tmp_path))
    cache = tmp_path / "cache" / "mnist"
    _cannot_run(
        done,
        f"mnist files not found in {cache} (missing: train-images-idx3-ubyte,",
        "or set 'download: true' (dataset.params)",
    )
    assert not (tmp_path / "cache").exists()  # a dry run creates nothing
    assert not (tmp_path / "outputs").exists()


def test_the_json_plan_carries_the_verdict(tmp_path: Path) -> None:
    done = _dry(tmp_path, _mnist(False), "--json", **_empty_cache(tmp_path))
    assert done.returncode == 3
    record = json.loads(done.stdout)
    assert record["can_run"] is False
    assert record["reason"].startswith("the dataset would not load: mnist files not")
    assert done.stderr == f"error: cannot run here: {record['reason']}\n"
    assert record["dataset"]["name"] == "mnist"  # the fields it always had


def test_a_missing_custom_file_cannot_run(tmp_path: Path) -> None:
    config = _mnist(False)
    config["dataset"] = {"name": "custom", "path": "gone.csv"}
    config["model"]["params"] = {"layer_sizes": [2, 1]}
    _cannot_run(
        _dry(tmp_path, config),
        f"custom dataset file not found: {tmp_path / 'gone.csv'}",
    )


def test_a_missing_image_folder_cannot_run(tmp_path: Path) -> None:
    config = _mnist(False)
    config["dataset"] = {"name": "imagenet", "path": "photos"}
    config["model"]["params"] = {"layer_sizes": [12288, 10]}
    _cannot_run(
        _dry(tmp_path, config),
        f"imagenet not found: expected {tmp_path / 'photos'}/train/<class>/*.jpg",
    )


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file"
)
def test_an_unreadable_mnist_file_cannot_run(tmp_path: Path) -> None:
    folder = write_mnist(tmp_path / "cache" / "mnist", n_train=8, n_test=4)
    locked = folder / "t10k-labels-idx1-ubyte"
    locked.chmod(0)
    try:
        done = _dry(tmp_path, _mnist(False), **_empty_cache(tmp_path))
    finally:
        locked.chmod(0o600)
    _cannot_run(done, str(locked), "Permission denied")


# -- the download source -------------------------------------------------------------


def test_a_source_that_answers_can_run_and_is_only_asked(tmp_path: Path) -> None:
    with data_source(200) as source:
        env = {**_empty_cache(tmp_path), "MLX_DATA_URL": source.url}
        done = _dry(tmp_path, _mnist(True), **env)
    assert done.returncode == 0, done.stderr
    assert _verdict(done) == "yes"
    assert source.requests == [("HEAD", path) for path in MNIST_ARCHIVES]
    assert not (tmp_path / "cache").exists()


def test_files_in_place_ask_no_source(tmp_path: Path) -> None:
    write_mnist(tmp_path / "cache" / "mnist", n_train=8, n_test=4)
    with data_source(404) as source:
        env = {**_empty_cache(tmp_path), "MLX_DATA_URL": source.url}
        done = _dry(tmp_path, _mnist(True), **env)
    assert done.returncode == 0, done.stderr
    assert source.requests == []


def test_a_source_that_answers_404_cannot_run(tmp_path: Path) -> None:
    with data_source(404) as source:
        env = {**_empty_cache(tmp_path), "MLX_DATA_URL": source.url}
        done = _dry(tmp_path, _mnist(True), **env)
    url = source.url + MNIST_ARCHIVES[0][1:]
    reason = _cannot_run(
        done,
        f"cannot download mnist: {url} answers HTTP 404 (Not Found). ",
        f"check MLX_DATA_URL ({source.url})",
    )
    assert "download: true" not in reason  # the config has it
    assert source.requests == [("HEAD", MNIST_ARCHIVES[0])]


def test_a_closed_port_cannot_run(tmp_path: Path) -> None:
    url = closed_port_url()
    done = _dry(tmp_path, _mnist(True), MLX_DATA_URL=url, **_empty_cache(tmp_path))
    reason = _cannot_run(
        done, f"cannot download mnist: {url}train-images-idx3-ubyte.gz does not answer"
    )
    assert "Connection refused)" in reason
    assert "download: true" not in reason


def test_a_url_no_request_can_name_cannot_run(tmp_path: Path) -> None:
    url = "http://" + "a" * 70 + ".invalid/"  # a DNS label is 63 bytes at most
    done = _dry(tmp_path, _mnist(True), MLX_DATA_URL=url, **_empty_cache(tmp_path))
    _cannot_run(done, f"{url}train-images-idx3-ubyte.gz cannot be asked (")


def test_an_unknown_host_keeps_the_whole_cause(tmp_path: Path) -> None:
    # .invalid never resolves (RFC 6761); a long name made the old message cut off
    host = ".".join(["a" * 60] * 3) + ".invalid"
    url = f"http://{host}/"
    done = _dry(tmp_path, _mnist(True), MLX_DATA_URL=url, **_empty_cache(tmp_path))
    reason = _cannot_run(done, f"{url}train-images-idx3-ubyte.gz does not answer (")
    cause = reason.split("does not answer (", 1)[1].split("). Download", 1)[0]
    assert re.fullmatch(r"\[Errno -?\d+\] [\w ,'-]*\w", cause), cause
    assert "..." not in reason


def test_a_download_that_fails_keeps_its_cause_and_suggests_nothing_set(
    tmp_path: Path,
) -> None:
    pytest.importorskip("pooch")
    # the source answers the plan's HEAD, then refuses the file itself
    with data_source(200, get_status=404) as source:
        env = cli_env(tmp_path, MLX_DATA_URL=source.url, **_empty_cache(tmp_path))
        write_config(tmp_path / "c.yaml", _mnist(True))
        done = run_cli(["run-experiment", "--config", "c.yaml"], tmp_path, env=env)
    url = source.url + MNIST_ARCHIVES[0][1:]
    assert done.returncode == 1
    (error,) = done.stderr.splitlines()
    assert error.startswith(
        f"error: Could not download {url}: 404 Client Error: Not Found for url: {url}. "
    )
    assert error.endswith(f"or check MLX_DATA_URL ({source.url}).")
    assert "download: true" not in done.stderr
    assert not (tmp_path / "outputs").exists()


# -- torchvision's layouts -----------------------------------------------------------


@pytest.mark.parametrize("given", ["folder", "parent"])
def test_a_torchvision_cifar_folder_is_named_with_what_to_get(
    tmp_path: Path, given: str
) -> None:
    pickled = tmp_path / "data" / "cifar-10-batches-py"
    pickled.mkdir(parents=True)
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        (pickled / name).write_bytes(b"pickle")
    path = pickled if given == "folder" else pickled.parent
    config = _mnist(False, path=str(path))
    config["dataset"]["name"] = "cifar10"
    config["model"]["params"]["layer_sizes"] = [3072, 10]
    needles = (
        f"{pickled} holds the Python (pickle) version of cifar10, as torchvision "
        "downloads it; mlx reads the binary version: get cifar-10-binary.tar.gz",
        f"so that {path}/cifar-10-batches-bin/ holds data_batch_1.bin ... "
        "data_batch_5.bin and test_batch.bin",
    )
    _cannot_run(_dry(tmp_path, config), *needles)
    write_config(tmp_path / "c.yaml", config)
    done = run_cli(["run-experiment", "--config", "c.yaml"], tmp_path)
    assert done.returncode == 1
    assert all(needle in done.stderr for needle in needles), done.stderr


def test_torchvision_mnist_layout_says_which_path_to_give(tmp_path: Path) -> None:
    raw = write_mnist(tmp_path / "data" / "MNIST" / "raw", n_train=8, n_test=4)
    config = _mnist(False, path=str(tmp_path / "data"))
    reason = _cannot_run(_dry(tmp_path, config))
    assert reason.endswith(
        f"{raw} is torchvision's MNIST layout: its files are the ones mlx reads; set "
        f"dataset.path to {raw}."
    )
    config["dataset"]["path"] = str(raw)
    assert _dry(tmp_path, config).returncode == 0


def test_a_cifar_folder_in_place_can_run(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data")
    config = _mnist(False, path=str(tmp_path / "data"))
    config["dataset"]["name"] = "cifar10"
    config["model"]["params"]["layer_sizes"] = [3072, 10]
    assert _dry(tmp_path, config).returncode == 0


# -- a run looks at its data before torch -------------------------------------------

_MAIN = (
    "import sys\n"
    "from mlx.cli.main import main\n"
    "code = main(['run-experiment', '--config', 'c.yaml'])\n"
    "print(code, 'torch' in sys.modules)\n"
)


def _run_and_say_if_torch_loaded(root: Path, config: dict, **env: str):
    write_config(root / "c.yaml", config)
    return subprocess.run(
        [sys.executable, "-c", _MAIN],
        cwd=root,
        env=cli_env(root, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _resnet(config: dict) -> dict:
    config["model"] = {"name": "resnet18", "params": {"num_classes": 10}}
    return config


@pytest.mark.parametrize("download", [False, True], ids=["no-download", "download"])
def test_an_image_model_run_without_its_data_fails_before_torch(
    tmp_path: Path, download: bool
) -> None:
    pytest.importorskip("torch")
    env = {**_empty_cache(tmp_path), "MLX_DATA_URL": closed_port_url()}
    done = _run_and_say_if_torch_loaded(tmp_path, _resnet(_mnist(download)), **env)
    assert done.stdout.splitlines()[-1] == "1 False", done.stderr
    needle = "does not answer" if download else "mnist files not found in"
    assert done.stderr.startswith("error: ") and needle in done.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_torch_custom_model_run_without_its_file_fails_before_torch(
    tmp_path: Path,
) -> None:
    pytest.importorskip("torch")
    (tmp_path / "nets.py").write_text(
        "import torch\n\n\nclass Net(torch.nn.Module):\n    pass\n"
    )
    config = _mnist(False)
    config["dataset"] = {"name": "custom", "path": "gone.csv"}
    config["model"] = {"name": "custom", "params": {"class_path": "nets:Net"}}
    config["training"]["device"] = "cpu"
    done = _run_and_say_if_torch_loaded(tmp_path, config)
    assert done.stdout.splitlines()[-1] == "1 False", done.stderr
    gone = tmp_path / "gone.csv"
    assert done.stderr.splitlines() == [
        f"warning: c.yaml:4:9: dataset.path: {gone} does not exist (yet)",
        f"error: custom dataset file not found: {gone}",
    ]


def test_a_run_whose_download_source_answers_checks_the_device_after(
    tmp_path: Path,
) -> None:
    # the device check waited for the data; it still refuses what cannot run here
    pytest.importorskip("torch")
    config = _resnet(_mnist(True))
    config["training"]["device"] = "cuda:99"
    with data_source(200) as source:
        env = cli_env(tmp_path, MLX_DATA_URL=source.url, **_empty_cache(tmp_path))
        write_config(tmp_path / "c.yaml", config)
        done = run_cli(["run-experiment", "--config", "c.yaml"], tmp_path, env=env)
    assert done.returncode == 1
    assert "training.device" in done.stderr, done.stderr
    assert [m for m, _ in source.requests] == ["HEAD"] * 4  # nothing downloaded
    assert not (tmp_path / "cache").exists()


# -- sweeps --------------------------------------------------------------------------


def test_a_sweep_dry_run_whose_points_cannot_run_exits_3(tmp_path: Path) -> None:
    write_config(tmp_path / "base.yaml", _mnist(False))
    (tmp_path / "s.yaml").write_text(
        "name: s\nbase: base.yaml\nmethod: grid\n"
        "parameters:\n  training.learning_rate: {values: [0.1, 0.01]}\n"
        "metric: val_accuracy\ngoal: max\n"
    )
    env = cli_env(tmp_path, **_empty_cache(tmp_path))
    args = ["sweep", "--config", "s.yaml"]
    dry = run_cli([*args, "--dry-run"], tmp_path, env=env)
    assert dry.returncode == 3, dry.stderr
    assert dry.stderr.startswith(
        "error: no point of sweep 's' can run here: the dataset would not load: "
        "mnist files not found in"
    )
    done = run_cli(args, tmp_path, env=env)
    assert done.returncode == 1  # a sweep that does not start is an error
    assert done.stderr == dry.stderr
    assert not (tmp_path / "outputs").exists()


def test_the_help_documents_the_exit_statuses(tmp_path: Path) -> None:
    done = run_cli(["run-experiment", "--help"], tmp_path)
    text = " ".join(done.stdout.split())
    assert "0: valid and can run here, 1: invalid config, 3: valid but cannot" in text
