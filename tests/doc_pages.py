"""The examples of README.md and docs/*.md, as the tests read and run them.

A fenced block is an example when its language is a shell's (``bash``, ``sh``,
``console``, ``zsh``) or ``python``. Words after the language in the fence's info
string say more:

- ``no-run``: the example cannot run in a test (it installs, or needs a network or a
  cluster); ``tests/test_docs.py`` lists every one with the reason.
- ``file=PATH``: the block is a file the page's later examples use (a CSV, a config,
  a module); it is written to ``PATH`` in the page's directory, not run.
- ``exit=N``: the command is expected to fail with status N (default 0).

Run IDs such as ``quickstart-20261126-104142-8eeb`` (the date 2026-11-26) are
placeholders: when a command runs, each is replaced by a real run of that name, the
newest for the newest placeholder, the one before for the one before, and so on.
Run as a script, this module does that to its arguments and then runs ``mlx``; the
tests' shell calls it for every ``mlx`` command, so a placeholder names a run made by
an earlier command of the same block.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[1]
SHELLS = ("bash", "sh", "console", "zsh")
FENCE = re.compile(r"^```([\w-]*)[ \t]*([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
PLACEHOLDER = re.compile(r"\b([A-Za-z0-9][\w.-]*?)-(20261126-\d{6}-[0-9a-f]{4})\b")


class Example(NamedTuple):
    """A fenced block of a page."""

    page: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    language: str
    flags: tuple[str, ...]
    body: str

    @property
    def file(self) -> str | None:
        """The path this block is written to, if it is a file."""
        for flag in self.flags:
            if flag.startswith("file="):
                return flag[len("file=") :]
        return None

    @property
    def exit_status(self) -> int:
        for flag in self.flags:
            if flag.startswith("exit="):
                return int(flag[len("exit=") :])
        return 0

    @property
    def is_example(self) -> bool:
        """A shell or Python example (runnable or marked no-run), not a file."""
        return self.language in (*SHELLS, "python") and self.file is None

    @property
    def runs(self) -> bool:
        return self.is_example and "no-run" not in self.flags

    @property
    def first_line(self) -> str:
        return self.body.splitlines()[0] if self.body else ""


def pages() -> list[Path]:
    """README.md and the pages of docs/ (docs/design/ holds records, not examples)."""
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def blocks(page: Path) -> list[Example]:
    """Every fenced block of ``page``, in order."""
    text = page.read_text(encoding="utf-8")
    name = page.relative_to(REPO_ROOT).as_posix()
    return [
        Example(
            name,
            text.count("\n", 0, match.start()) + 1,
            match.group(1),
            tuple(match.group(2).split()),
            match.group(3),
        )
        for match in FENCE.finditer(text)
    ]


def resolve(text: str, root: Path) -> str:
    """Replace the run-ID placeholders in ``text`` by runs found under ``root``."""
    wanted: dict[str, set[str]] = {}
    for match in PLACEHOLDER.finditer(text):
        wanted.setdefault(match.group(1), set()).add(match.group(0))
    for name, placeholders in wanted.items():
        pattern = re.compile(rf"{re.escape(name)}-\d{{8}}-\d{{6}}-[0-9a-f]{{4}}")
        found = {p.parent.name for p in root.glob(f"**/{name}-*/summary.json")}
        runs = sorted(run for run in found if pattern.fullmatch(run))
        if len(runs) < len(placeholders):
            wanted_runs = ", ".join(sorted(placeholders))
            raise SystemExit(f"doc example: no run of {name!r} for {wanted_runs}")
        for placeholder, run in zip(sorted(placeholders), runs[-len(placeholders) :]):
            text = text.replace(placeholder, run)
    return text


if __name__ == "__main__":
    # `mlx ARGS` in a page's shell example: placeholders resolved now, then mlx runs
    # resolved together: two placeholders of one name are two runs
    args = resolve("\0".join(sys.argv[1:]), Path.cwd()).split("\0")
    sys.argv = ["mlx", *(args if sys.argv[1:] else [])]
    runpy.run_module("mlx", run_name="__main__", alter_sys=True)
