"""Where relative paths in a config resolve to, and which paths may be written.

The repository root is ``$MLX_ROOT`` when set, else the nearest ancestor of the current
directory that holds ``.git`` or ``pyproject.toml``, else the current directory.
Relative config paths resolve against that root (not against the config file), and
everything mlx writes must stay inside it: :func:`resolve_inside_root` follows
symlinks before it checks, so neither ``..`` nor a link pointing elsewhere escapes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mlx.errors import ConfigError

# typing costs a few milliseconds of start-up, and every command's output passes
# through terminal_safe: for type checkers only here
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

    PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "UNSAFE_CHARACTERS",
    "control_character",
    "is_within",
    "repository_root",
    "resolve_inside_root",
    "resolve_path",
    "terminal_safe",
    "unprintable",
    "unsafe_character",
]

_ROOT_MARKERS = (".git", "pyproject.toml")

#: Characters a terminal acts on or hides instead of showing: the C0 and C1 controls
#: (Unicode category Cc), the format controls (Cf: the bidirectional embeddings,
#: overrides and isolates U+202A-U+202E and U+2066-U+2069, the marks U+200E, U+200F
#: and U+061C, zero-width spaces and joiners, the byte-order mark, tag characters,
#: ...), the line and paragraph separators (Zl, Zp) and lone surrogates (Cs: the
#: undecodable bytes of a file name). Every printer shows them escaped
#: (:func:`terminal_safe`).
UNSAFE_CHARACTERS = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891"
    "\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ud800-\udfff\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]"
)


def repository_root(start: Path | None = None) -> Path:
    """The directory that relative config paths resolve against (absolute, resolved)."""
    override = os.environ.get("MLX_ROOT")
    if override:
        problem = unprintable(override, "MLX_ROOT")
        if problem is not None:
            raise ConfigError(problem)
        try:
            resolved = Path(override).expanduser().resolve()
            is_dir, exists = resolved.is_dir(), resolved.exists()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a loop before 3.13
            raise ConfigError(
                f"MLX_ROOT {override!r} cannot be resolved: {exc}"
            ) from None
        if not is_dir:
            # never created: a root that is not there is a typo, and runs would
            # land somewhere no one looks (docs/design/environment.md)
            raise ConfigError(
                f"MLX_ROOT {override!r} "
                f"{'is not a directory' if exists else 'does not exist'}; it must "
                "name an existing directory",
                hint="create it first, or unset MLX_ROOT to use the repository root",
            )
        return resolved
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / marker).exists() for marker in _ROOT_MARKERS):
            return candidate
    return here


def control_character(text: str) -> str | None:
    """The first control character (U+0000 to U+001F, U+007F to U+009F) in
    ``text``, or None. Such a character in a path is a mistake (a stray escape, a
    pasted newline) and would garble every message that shows the path."""
    for char in text:
        if ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            return char
    return None


def unsafe_character(text: str) -> str | None:
    """The first character of ``text`` that :data:`UNSAFE_CHARACTERS` holds (a
    control, a bidirectional or other format control, a line separator, a lone
    surrogate), or None."""
    found = UNSAFE_CHARACTERS.search(text)
    return found.group() if found else None


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # as a UTF-16 pair: the escape JSON reads back
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def terminal_safe(text: str, keep: str = "") -> str:
    """``text`` with every character of :data:`UNSAFE_CHARACTERS` but those in
    ``keep`` written as an escape (``\\u202e``; a character beyond U+FFFF as its
    UTF-16 pair, ``\\udb40\\udc01``), so that a user's value can neither reorder,
    hide nor garble what a terminal shows. The escapes are JSON's: a JSON text stays
    valid and reads back to the same values."""
    if not UNSAFE_CHARACTERS.search(text):
        return text
    if not keep:
        return UNSAFE_CHARACTERS.sub(_escape, text)
    return UNSAFE_CHARACTERS.sub(
        lambda found: found.group() if found.group() in keep else _escape(found), text
    )


def unprintable(text: str, label: str, kind: str = "a path") -> str | None:
    """``"<label> '<text>' contains the control character '\\x01'; <kind> must be
    printable"`` when ``text`` holds a control character (shown escaped, so it
    cannot garble the message); None when it holds none."""
    bad = control_character(text)
    if bad is None:
        return None
    return (
        f"{label} {text!r} contains the control character {bad!r}; {kind} must be "
        "printable"
    )


def resolve_path(path: PathLike, root: PathLike | None = None) -> Path:
    """``path`` made absolute: ``~`` expanded, relative paths joined to ``root``.

    ``root`` defaults to :func:`repository_root`. Symlinks along the existing part
    of the path are followed; the path itself need not exist.

    Raises
    ------
    ConfigError
        When the path cannot be resolved (a symlink loop, for instance) or holds a
        control character (a NUL byte, a newline, ...).
    """
    text = os.fspath(path)
    problem = unprintable(text, "path")
    if problem is not None:
        raise ConfigError(problem)
    base = Path(root) if root is not None else repository_root()
    candidate = Path(os.fspath(path)).expanduser()
    if not candidate.is_absolute():
        candidate = base / candidate
    try:
        return candidate.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop before 3.13
        raise ConfigError(f"cannot resolve path {os.fspath(path)!r}: {exc}") from exc


def is_within(path: PathLike, root: PathLike) -> bool:
    """Whether resolved ``path`` is ``root`` or lies below it (both resolved)."""
    child = Path(os.fspath(path))
    parent = Path(os.fspath(root))
    return child == parent or parent in child.parents


def resolve_inside_root(path: PathLike, root: PathLike | None = None) -> Path:
    """Resolve ``path`` like :func:`resolve_path` and require it to stay in ``root``.

    Raises
    ------
    ConfigError
        When the resolved path (after ``..`` and symlinks) lies outside the root;
        the message names the resolved path.
    """
    base = Path(root).resolve() if root is not None else repository_root()
    resolved = resolve_path(path, base)
    if not is_within(resolved, base):
        raise ConfigError(
            f"path {os.fspath(path)!r} resolves to {resolved}, which is outside "
            f"the repository root {base}"
        )
    return resolved
