"""What a user typed or a file holds never reaches the terminal raw.

A bidirectional override (U+202E), an isolate (U+2066), a zero-width joiner, a tag
character or a lone surrogate in a ``--set`` value, a config path, a run's name or a
sweep parameter is shown escaped (``\\u202e``) in every line the commands print, and
a JSON document on stdout stays valid and reads back to the very same text.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import unicodedata
from pathlib import Path

import pytest
from helpers import run_cli, small_classification, write_config
from run_copies import clone, new_root, train_template

from mlx.utils.paths import UNSAFE_CHARACTERS, terminal_safe

#: (character, its escape) for the variants tried
HOSTILE = {
    "rlo": ("\u202e", "\\u202e"),
    "lri": ("\u2066", "\\u2066"),
    "pdi": ("\u2069", "\\u2069"),
    "lrm": ("\u200e", "\\u200e"),
    "alm": ("\u061c", "\\u061c"),
    "zwj": ("\u200d", "\\u200d"),
    "bom": ("\ufeff", "\\ufeff"),
    "line-separator": ("\u2028", "\\u2028"),
    "tag": ("\U000e0041", "\\udb40\\udc41"),
    "c1-csi": ("\x9b", "\\u009b"),
}
RAW = tuple(char for char, _ in HOSTILE.values())


def _no_raw(*texts: str) -> None:
    for text in texts:
        found = [hex(ord(c)) for c in text if c in RAW]
        assert not found, (found, text)


def test_the_class_holds_every_control_format_and_separator_character() -> None:
    kinds = ("Cc", "Cf", "Zl", "Zp", "Cs")
    missing = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in kinds
        and not UNSAFE_CHARACTERS.match(chr(code))
    ]
    assert not missing
    for text in ("plain", "naïve café", "日本語", "emoji 🙂", "tab\there"):
        assert terminal_safe(text, keep="\t") == text


@pytest.mark.parametrize("variant", HOSTILE)
def test_escapes_are_json_and_read_back_to_the_same_text(variant: str) -> None:
    char, escape = HOSTILE[variant]
    text = f"a{char}b"
    assert terminal_safe(text) == f"a{escape}b"
    document = json.dumps({"v": text}, ensure_ascii=False)
    assert json.loads(terminal_safe(document)) == {"v": text}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    write_config(tmp_path / "exp.yaml", small_classification(epochs=1))
    return tmp_path


@pytest.mark.parametrize("variant", HOSTILE)
def test_an_echoed_set_value_is_escaped(root: Path, variant: str) -> None:
    char, escape = HOSTILE[variant]
    done = run_cli(
        [
            "run-experiment",
            "--config",
            "exp.yaml",
            "--set",
            f"training.optimizer=a{char}",
        ],
        root,
    )
    assert done.returncode == 1
    _no_raw(done.stdout, done.stderr)
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: --set training.optimizer=a{escape}: "), line


@pytest.mark.parametrize("variant", ["rlo", "lri", "zwj", "tag"])
def test_a_set_warning_and_a_dry_run_show_the_value_escaped(
    root: Path, variant: str
) -> None:
    char, escape = HOSTILE[variant]
    args = ["run-experiment", "--config", "exp.yaml", "--dry-run"]
    args += ["--set", f"dataset.params.colour=r{char}d"]
    args += ["--set", f"description=left{char}right"]
    done = run_cli(args, root)
    assert done.returncode == 0, done.stderr
    _no_raw(done.stdout, done.stderr)
    assert f"--set dataset.params.colour=r{escape}d" in done.stderr
    as_json = run_cli([*args, "--json"], root)
    assert as_json.returncode == 0, as_json.stderr
    _no_raw(as_json.stdout)
    record = json.loads(as_json.stdout)
    assert record["config"]["description"] == f"left{char}right"


@pytest.mark.parametrize("variant", ["rlo", "lri", "zwj"])
def test_a_config_path_is_shown_escaped(root: Path, variant: str) -> None:
    char, escape = HOSTILE[variant]
    done = run_cli(["run-experiment", "--config", f"ex{char}p.yaml"], root)
    assert done.returncode == 1
    _no_raw(done.stdout, done.stderr)
    assert f"ex{escape}p.yaml" in done.stderr.splitlines()[0]
    shutil.copy(root / "exp.yaml", root / f"ex{char}p.yaml")
    ran = run_cli(["run-experiment", "--config", f"ex{char}p.yaml", "--quiet"], root)
    assert ran.returncode == 0, ran.stderr
    _no_raw(ran.stdout, ran.stderr)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_template(tmp_path_factory.mktemp("template"))


@pytest.mark.parametrize("variant", ["rlo", "lri", "alm", "tag", "c1-csi"])
def test_a_run_name_is_never_printed_raw(
    tmp_path: Path, template: Path, variant: str
) -> None:
    char, _ = HOSTILE[variant]
    root = new_root(tmp_path)
    run = clone(template, root, "small-20240103-000000-0001")
    other = clone(template, root, "small-20240104-000000-0002")
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    summary["name"] = f"evil{char}name"
    summary["error"] = f"it{char}failed"
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    for args in (
        ["runs"],
        ["runs", "show", run.name],
        ["compare", run.name, other.name],
        ["runs", "--json"],
        ["compare", run.name, other.name, "--json"],
    ):
        done = run_cli(args, root)
        assert done.returncode == 0, (args, done.stderr)
        _no_raw(done.stdout, done.stderr)
        if "--json" in args:
            json.loads(done.stdout)


def test_a_run_directory_whose_name_is_not_utf8_is_listed_safely(
    tmp_path: Path, template: Path
) -> None:
    root = new_root(tmp_path)
    clone(template, root, "small-20240104-000000-0002")
    odd = os.fsdecode(b"copy-\xff\xfe")
    shutil.copytree(template, root / "outputs" / odd, symlinks=True)
    for args in (["runs"], ["runs", "--json"]):
        done = run_cli(args, root)
        assert done.returncode == 0, done.stderr
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in done.stdout)
        assert "copy-??" in done.stdout


_TAGGED = '''
from mlx.models import MLP


class Tagged(MLP):
    """An MLP with a string parameter that changes nothing."""

    def __init__(self, tag="", **params):
        self.tag = tag
        super().__init__(**params)
'''


@pytest.mark.parametrize("variant", ["rlo", "lri", "zwj", "tag"])
def test_a_sweep_parameter_value_is_escaped_in_progress_and_show(
    root: Path, variant: str
) -> None:
    char, escape = HOSTILE[variant]
    (root / "tagged.py").write_text(_TAGGED, encoding="utf-8")
    base = small_classification(epochs=1)
    base["model"] = {
        "name": "custom",
        "params": {
            "class_path": "tagged:Tagged",
            "layer_sizes": [8, 16, 3],
            "output_activation": "softmax",
            "tag": "x",
            "seed": 1,
        },
    }
    write_config(root / "exp.yaml", base)
    values = [f"a{char}b", "plain"]
    write_config(
        root / "sweep.yaml",
        {
            "name": "sw",
            "base": "exp.yaml",
            "parameters": {"model.params.tag": {"values": values}},
            "metric": "val_accuracy",
        },
    )
    done = run_cli(["sweep", "--config", "sweep.yaml", "--jobs", "1"], root)
    assert done.returncode == 0, done.stderr
    _no_raw(done.stdout, done.stderr)
    assert f"a{escape}b" in done.stdout + done.stderr
    shown = run_cli(["sweep", "show", "sw", "--json"], root)
    assert shown.returncode == 0, shown.stderr
    _no_raw(shown.stdout)
    points = json.loads(shown.stdout)["points"]
    assert sorted(p["parameters"]["model.params.tag"] for p in points) == sorted(values)
    text = run_cli(["sweep", "show", "sw"], root)
    _no_raw(text.stdout, text.stderr)
