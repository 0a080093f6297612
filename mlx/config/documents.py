"""Read JSON and YAML config text into plain data plus the position of every node.

Validation reports ``file:line:column`` for every problem, so parsing keeps, next to
the plain data, where each value and each mapping key started. JSON is decoded by
:mod:`json` (the judge of JSON validity); a small scanner then walks the accepted text
once more to record positions. YAML goes through PyYAML's event parser and our own
composer, which only builds plain scalars, lists and mappings and enforces the limits
that keep hostile files harmless:

* at most :data:`MAX_BYTES` of input,
* at most :data:`MAX_DEPTH` levels of nesting,
* at most :data:`MAX_NODES` values, counted after aliases are expanded (billion laughs),
* no recursive aliases and no tags that construct objects (``!!python/object``).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Tuple, Union

import yaml

from mlx.config.issues import ConfigIssue
from mlx.errors import ConfigError
from mlx.utils.paths import control_character, terminal_safe
from mlx.utils.safe_io import open_regular, read_fd

__all__ = [
    "CORE_SCHEMA",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "Document",
    "Mark",
    "NodePath",
    "YamlDumper",
    "dotted",
    "dump_yaml",
    "load_yaml",
    "parse_text",
    "parse_value",
    "read_document",
]

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000

NodePath = Tuple[Union[str, int], ...]

_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


@dataclasses.dataclass(frozen=True)
class Mark:
    """A 1-based line and column in the config text."""

    line: int
    column: int


@dataclasses.dataclass
class Document:
    """Plain data (dicts, lists, scalars) with positions keyed by node path.

    ``values[path]`` is where the value at ``path`` starts; ``keys[path]`` is where
    its key starts when the parent is a mapping. Both are empty for data that did
    not come from text. ``errors`` are problems that do not stop validation of the
    rest (duplicate keys: the last value is kept and checked).
    """

    source: str
    data: Any
    values: dict[NodePath, Mark] = dataclasses.field(default_factory=dict)
    keys: dict[NodePath, Mark] = dataclasses.field(default_factory=dict)
    errors: list[ConfigIssue] = dataclasses.field(default_factory=list)
    #: the bytes of the file the document was read from (empty for other text)
    raw: bytes = b""


def dotted(path: NodePath) -> str:
    """``("model", "params", "layer_sizes", 0)`` -> ``model.params.layer_sizes[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _fail(
    source: str, mark: Mark | None, message: str, path: NodePath = ()
) -> ConfigError:
    issue = ConfigIssue(
        source,
        mark.line if mark else None,
        mark.column if mark else None,
        dotted(path),
        message,
    )
    return ConfigError(str(issue), errors=[issue])


def read_document(path: str | Path) -> Document:
    """Read and parse the config file at ``path`` (format chosen by extension).

    Raises
    ------
    ConfigError
        The file is missing, not a regular file, unreadable, too large, not UTF-8,
        has an unknown extension, or is not valid JSON/YAML within the limits.
    """
    source = str(path)
    bad = control_character(source)
    if bad is not None:  # shown escaped, so the path cannot garble the message
        raise _fail(
            repr(source),
            None,
            f"the path contains the control character {bad!r}; a path must be "
            "printable",
        )
    if not source:
        raise _fail("''", None, "the config path is empty")
    file = Path(path)
    fmt = _FORMATS.get(file.suffix.lower())
    try:
        exists = file.exists()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise _fail(source, None, f"cannot use this path: {reason}") from exc
    if not exists and os.path.islink(file):
        raise _fail(source, None, "is a symbolic link that leads nowhere (or loops)")
    if not exists:
        raise ConfigError(
            f"{source}: config file not found (looked for {file.absolute()})",
            errors=[ConfigIssue(source, None, None, "", "config file not found")],
            hint="check the path; relative paths are taken from the current directory",
        )
    if file.is_dir():
        raise _fail(source, None, "is a directory, not a config file")
    if fmt is None:
        raise _fail(
            source,
            None,
            f"unsupported config file extension {file.suffix or '(none)'!r}; "
            "use .json, .yaml or .yml",
        )
    raw = _read_limited(file, source)
    if len(raw) > MAX_BYTES:
        raise _fail(
            source, None, f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(
            source,
            Mark(line, column),
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
        ) from exc
    doc = parse_text(text, fmt, source)
    doc.raw = raw
    return doc


def _read_limited(file: Path, source: str) -> bytes:
    """At most ``MAX_BYTES + 1`` bytes of the config file, through the guarded
    opener: a FIFO or a device is refused by what it is, never waited on."""
    try:
        fd = open_regular(file, "the config file", error=ConfigError)
        assert fd is not None
        try:
            return read_fd(fd, MAX_BYTES + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _fail(source, None, f"cannot read the file: {exc.strerror}") from exc
    except ConfigError as exc:  # "<file>: the config file is a FIFO ..."
        cause = exc.__cause__
        why = str(exc).removeprefix(f"{os.fspath(file)}: the config file ")
        if isinstance(cause, OSError):
            why = f"cannot read the file: {cause.strerror or cause}"
        raise _fail(source, None, why.rstrip(".")) from exc


def parse_text(text: str, fmt: str, source: str) -> Document:
    """Parse ``text`` as ``"json"`` or ``"yaml"``; the top level must be a mapping."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if len(text) > MAX_BYTES:
        raise _fail(source, None, f"text is larger than {MAX_BYTES} characters")
    doc = _parse_json(text, source) if fmt == "json" else _parse_yaml(text, source)
    if doc.data is None:
        raise _fail(source, None, "config is empty; expected a mapping of fields")
    if not isinstance(doc.data, dict):
        kind = "a list" if isinstance(doc.data, list) else f"{doc.data!r}"[:40]
        raise _fail(
            source, doc.values.get(()), f"top level must be a mapping, got {kind}"
        )
    return doc


def parse_value(text: str, source: str) -> Any:
    """Parse one ``--set`` value: a YAML scalar or flow collection, safely.

    Text that YAML would read as a block collection (``a: b``) stays a string.
    """
    if not text.strip():
        return None
    undecodable = next((c for c in text if 0xDC80 <= ord(c) <= 0xDCFF), None)
    if undecodable is not None:  # a byte of the command line that is not UTF-8
        byte = ord(undecodable) - 0xDC00
        raise _fail(source, None, f"the value is not UTF-8 text (byte 0x{byte:02x})")
    try:
        doc = _parse_yaml(text, source)
    except ConfigError as exc:
        # a one-line value: the override itself is the location
        issues = [dataclasses.replace(i, line=None, column=None) for i in exc.errors]
        raise ConfigError("\n".join(str(i) for i in issues), errors=issues) from None
    if isinstance(doc.data, (dict, list)) and not text.lstrip().startswith(("{", "[")):
        return text
    return doc.data


# --------------------------------------------------------------------------- JSON

_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_ATOM = re.compile(r"-?Infinity|NaN|true|false|null|-?[0-9][0-9.eE+\-]*")


def _parse_json(text: str, source: str) -> Document:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            source, Mark(exc.lineno, exc.colno), f"invalid JSON: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise _fail(source, None, f"nesting is deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # e.g. an integer with more digits than Python allows
        raise _fail(source, None, f"invalid JSON: {exc}") from exc
    scanner = _JsonScanner(text, source)
    scanner.value((), 0)
    return Document(source, data, scanner.values, scanner.keys, scanner.duplicates)


class _JsonScanner:
    """Walk JSON text that :mod:`json` already accepted, recording positions."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0
        self.count = 0
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.values: dict[NodePath, Mark] = {}
        self.keys: dict[NodePath, Mark] = {}
        self.duplicates: list[ConfigIssue] = []

    def mark(self, offset: int) -> Mark:
        line = bisect.bisect_right(self.line_starts, offset)
        return Mark(line, offset - self.line_starts[line - 1] + 1)

    def skip(self) -> None:
        match = _JSON_WS.match(self.text, self.pos)
        assert match is not None  # the pattern matches the empty string
        self.pos = match.end()

    def value(self, path: NodePath, depth: int) -> None:
        self.skip()
        here = self.mark(self.pos)
        self.values[path] = here
        self.count += 1
        if depth > MAX_DEPTH:
            raise _fail(
                self.source, here, f"nesting is deeper than {MAX_DEPTH} levels", path
            )
        if self.count > MAX_NODES:
            raise _fail(self.source, here, f"more than {MAX_NODES} values", path)
        char = self.text[self.pos]
        if char == "{":
            self.members(path, depth)
        elif char == "[":
            self.items(path, depth)
        else:
            pattern = _JSON_STRING if char == '"' else _JSON_ATOM
            match = pattern.match(self.text, self.pos)
            assert match is not None, "json accepted this text"
            self.pos = match.end()

    def members(self, path: NodePath, depth: int) -> None:
        self.pos += 1
        self.skip()
        seen: dict[str, Mark] = {}
        if self.text[self.pos] == "}":
            self.pos += 1
            return
        while True:
            self.skip()
            key_mark = self.mark(self.pos)
            match = _JSON_STRING.match(self.text, self.pos)
            assert match is not None, "json accepted this text"
            key = json.loads(match.group())
            self.pos = match.end()
            child = (*path, key)
            if key in seen:
                self.duplicates.append(
                    _duplicate(self.source, child, seen[key], key_mark)
                )
            seen[key] = key_mark
            self.keys[child] = key_mark
            self.skip()
            self.pos += 1  # the ':'
            self.value(child, depth + 1)
            self.skip()
            closing = self.text[self.pos]
            self.pos += 1
            if closing == "}":
                return

    def items(self, path: NodePath, depth: int) -> None:
        self.pos += 1
        self.skip()
        if self.text[self.pos] == "]":
            self.pos += 1
            return
        index = 0
        while True:
            self.value((*path, index), depth + 1)
            index += 1
            self.skip()
            closing = self.text[self.pos]
            self.pos += 1
            if closing == "]":
                return


def _duplicate(source: str, path: NodePath, first: Mark, second: Mark) -> ConfigIssue:
    return ConfigIssue(
        source,
        second.line,
        second.column,
        dotted(path),
        f"{dotted(path)}: duplicate key {path[-1]!r} (first at line {first.line}, "
        f"column {first.column}; again at line {second.line}, column "
        f"{second.column})",
    )


# --------------------------------------------------------------------------- YAML

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"

# The YAML 1.2 core schema (yaml.org/spec/1.2.2, section 10.3.2): what a plain
# scalar means. PyYAML implements YAML 1.1, where `yes`/`on` are booleans, `12:30` is
# the sexagesimal 750, `017` is octal and `1_000` an integer; in 1.2 these are
# strings (or, for `017`, the decimal 17), and `1e-3` and `0o17` are numbers.
CORE_SCHEMA: tuple[tuple[str, str, str], ...] = (
    ("null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
)


_CORE = {kind: re.compile(pattern) for kind, pattern, _ in CORE_SCHEMA}


def _core_int(text: str) -> int:
    if not _CORE["int"].match(text):
        raise ValueError("not a YAML 1.2 integer")
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # "017" is seventeen: 1.2 has no leading-zero octal


def _core_float(text: str) -> float:
    if _CORE["int"].match(text) and text[:2] in ("0o", "0x"):
        return float(_core_int(text))
    if not (_CORE["float"].match(text) or _CORE["int"].match(text)):
        raise ValueError("not a YAML 1.2 number")
    lowered = text.lower()
    if lowered.endswith((".inf", ".nan")):
        return float(lowered.replace(".", ""))
    return float(text)


def _core_bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError("expected true or false")
    return text.lower() == "true"


def _core_null(text: str) -> None:
    if text not in ("", "~", "null", "Null", "NULL"):
        raise ValueError("expected null")
    return None


# tag -> how its text becomes a value (explicit tags such as `!!int 017` too)
_SCALARS: dict[str, Any] = {
    _TAG + "str": str,
    _TAG + "int": _core_int,
    _TAG + "float": _core_float,
    _TAG + "bool": _core_bool,
    _TAG + "null": _core_null,
}


class _Loader(_Base):
    """PyYAML's safe loader, resolving plain scalars by the YAML 1.2 core schema."""

    yaml_implicit_resolvers: dict[Any, Any] = {}


class YamlDumper(yaml.SafeDumper):
    """Quotes every string that YAML 1.1 *or* 1.2 would read as something else, so
    what it writes reads back the same under either."""


for _kind, _pattern, _first in CORE_SCHEMA:
    for _cls in (_Loader, YamlDumper):
        _cls.add_implicit_resolver(_TAG + _kind, re.compile(_pattern), list(_first))
    if _kind == "null":
        _Loader.add_implicit_resolver(_TAG + "null", re.compile("^$"), [""])
# `<<: *base` merge keys are not in the 1.2 core schema, but every YAML tool knows them
_Loader.add_implicit_resolver(_TAG + "merge", re.compile(r"^(?:<<)$"), ["<"])


def _construct_scalar(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return _SCALARS[node.tag](loader.construct_scalar(node))


for _tag in _SCALARS:
    _Loader.add_constructor(_tag, _construct_scalar)


def load_yaml(text: str) -> Any:
    """Plain data from YAML ``text``, read by the YAML 1.2 core schema (safe: only
    strings, numbers, booleans, null, lists and mappings). For files mlx wrote
    itself; configs go through :func:`parse_text`, which also locates errors."""
    return yaml.load(text, Loader=_Loader)


def dump_yaml(data: Any, **options: Any) -> str:
    """YAML text of plain ``data`` that reads back the same under YAML 1.1 and 1.2."""
    options.setdefault("sort_keys", False)
    options.setdefault("default_flow_style", False)
    options.setdefault("allow_unicode", True)
    return str(yaml.dump(data, Dumper=options.pop("Dumper", YamlDumper), **options))


# Explicit `!!timestamp` values are read as the text written: a config has no use
# for date objects.
_TEXT_TAGS = {_TAG + "timestamp", _TAG + "value"}
_MERGE = _TAG + "merge"


@dataclasses.dataclass(eq=False)
class _Node:
    """A composed YAML node: a scalar value, a list of nodes or a list of pairs."""

    kind: str  # "scalar", "seq" or "map"
    mark: Mark
    value: Any = None
    items: list[Any] = dataclasses.field(default_factory=list)
    is_merge: bool = False


def _mark(yaml_mark: yaml.Mark) -> Mark:
    return Mark(yaml_mark.line + 1, yaml_mark.column + 1)


def _parse_yaml(text: str, source: str) -> Document:
    loader = _Loader(text)
    try:
        root = _Composer(loader, source).document()
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        before = text[: exc.position]
        here = Mark(before.count("\n") + 1, len(before) - before.rfind("\n"))
        shown = terminal_safe(chr(exc.character)) if exc.character else "?"
        raise _fail(
            source, here, f"invalid YAML: the character {shown} is not allowed"
        ) from exc
    except yaml.MarkedYAMLError as exc:
        mark = _mark(exc.problem_mark) if exc.problem_mark is not None else None
        problem = exc.problem or exc.context or "syntax error"
        if exc.problem and exc.context and exc.context_mark is not None:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise _fail(source, mark, f"invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise _fail(source, None, f"invalid YAML: {exc}") from exc
    except RecursionError as exc:
        raise _fail(source, None, f"nesting is deeper than {MAX_DEPTH} levels") from exc
    finally:
        loader.dispose()
    if root is None:
        return Document(source, None)
    return _Flattener(source).document(root)


class _Composer:
    """Build :class:`_Node` trees from PyYAML events, within the limits."""

    def __init__(self, loader: _Loader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.anchors: dict[str, _Node] = {}
        self.open_anchors: set[str] = set()
        self.count = 0

    def document(self) -> _Node | None:
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # document start
        node = self.node(0)
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            event = loader.peek_event()
            raise _fail(
                self.source,
                _mark(event.start_mark),
                "expected one YAML document, found another ('---')",
            )
        return node

    def node(self, depth: int) -> _Node:
        loader = self.loader
        event = loader.peek_event()
        here = _mark(event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            loader.get_event()
            if event.anchor in self.open_anchors:
                raise _fail(
                    self.source, here, f"recursive alias *{event.anchor} is not allowed"
                )
            if event.anchor not in self.anchors:
                raise _fail(self.source, here, f"undefined alias *{event.anchor}")
            return self.anchors[event.anchor]
        self.count += 1
        if depth > MAX_DEPTH:
            raise _fail(self.source, here, f"nesting is deeper than {MAX_DEPTH} levels")
        if self.count > MAX_NODES:
            raise _fail(self.source, here, f"more than {MAX_NODES} values")
        anchor = event.anchor
        if anchor is not None:
            self.open_anchors.add(anchor)
        if isinstance(event, yaml.ScalarEvent):
            node = self.scalar(loader.get_event(), here)
        elif isinstance(event, yaml.SequenceStartEvent):
            self.check_tag(event.tag, _TAG + "seq", here)
            loader.get_event()
            node = _Node("seq", here)
            while not loader.check_event(yaml.SequenceEndEvent):
                node.items.append(self.node(depth + 1))
            loader.get_event()
        else:
            self.check_tag(event.tag, _TAG + "map", here)
            loader.get_event()
            node = _Node("map", here)
            while not loader.check_event(yaml.MappingEndEvent):
                key = self.node(depth + 1)
                node.items.append((key, self.node(depth + 1)))
            loader.get_event()
        if anchor is not None:
            self.open_anchors.discard(anchor)
            self.anchors[anchor] = node
        return node

    def check_tag(self, tag: str | None, expected: str, here: Mark) -> None:
        if tag not in (None, "!", expected):
            raise _fail(self.source, here, _tag_message(tag))

    def scalar(self, event: yaml.ScalarEvent, here: Mark) -> _Node:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _MERGE:
            return _Node("scalar", here, "<<", is_merge=True)
        if tag in _TEXT_TAGS:
            return _Node("scalar", here, event.value)
        if tag not in _SCALARS:
            raise _fail(self.source, here, _tag_message(tag))
        try:
            value = _SCALARS[tag](event.value)
        except (ValueError, yaml.YAMLError) as exc:
            raise _fail(
                self.source, here, f"cannot read {event.value[:40]!r}: {exc}"
            ) from exc
        return _Node("scalar", here, value)


def _tag_message(tag: str | None) -> str:
    shown = str(tag).replace(_TAG, "!!")
    return (
        f"YAML tag {shown!r} is not allowed; a config holds only plain "
        "strings, numbers, booleans, null, lists and mappings"
    )


class _Flattener:
    """Turn a node graph into plain data, counting values as aliases expand."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.count = 0
        self.values: dict[NodePath, Mark] = {}
        self.keys: dict[NodePath, Mark] = {}
        self.issues: list[ConfigIssue] = []

    def document(self, root: _Node) -> Document:
        data = self.node(root, ())
        return Document(self.source, data, self.values, self.keys, self.issues)

    def node(self, node: _Node, path: NodePath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _fail(
                self.source,
                node.mark,
                f"more than {MAX_NODES} values once aliases are expanded",
                path,
            )
        if len(path) > MAX_DEPTH:
            raise _fail(
                self.source, node.mark, f"nesting is deeper than {MAX_DEPTH} levels"
            )
        self.values.setdefault(path, node.mark)
        if node.kind == "scalar":
            return node.value
        if node.kind == "seq":
            return [self.node(item, (*path, i)) for i, item in enumerate(node.items)]
        return self.mapping(node, path)

    def mapping(self, node: _Node, path: NodePath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, Mark] = {}
        merges: list[_Node] = []
        for key_node, value_node in node.items:
            if key_node.is_merge:
                merges.append(value_node)
                continue
            key = key_node.value if key_node.kind == "scalar" else None
            if not isinstance(key, str):
                shown = "a collection" if key_node.kind != "scalar" else repr(key)
                self.issues.append(
                    ConfigIssue(
                        self.source,
                        key_node.mark.line,
                        key_node.mark.column,
                        dotted(path),
                        f"{dotted(path) or 'config'}: mapping keys must be strings, "
                        f"got {shown}",
                    )
                )
                continue
            child = (*path, key)
            if key in seen:
                self.issues.append(
                    _duplicate(self.source, child, seen[key], key_node.mark)
                )
            seen[key] = key_node.mark
            self.keys.setdefault(child, key_node.mark)
            result[key] = self.node(value_node, child)
        # '<<: *base' merge keys: explicit keys win, then earlier merges win
        for merge in merges:
            sources = merge.items if merge.kind == "seq" else [merge]
            for source in sources:
                if source.kind != "map":
                    raise _fail(
                        self.source,
                        source.mark,
                        "a '<<' merge key needs a mapping or a list of mappings",
                        path,
                    )
                merged = self.mapping(source, path)
                for key, value in merged.items():
                    result.setdefault(key, value)
        return result
