"""Rules for plain values: the bricks of the experiment schema and the sweep file.

A rule checks one field. ``rule.check(log, path, value)`` returns the value
(normalised: an integer for a float field becomes a float) or :data:`BAD`, having
written its own error to the :class:`~mlx.config.reporting.IssueLog` in the one
template ``training.epochs must be an integer >= 1, got -3``. :class:`Section` is a
mapping of :class:`Field` entries, so a section of the schema reads like the table in
the reference. A field that fails stays in its section as :data:`BAD`, so that the
checks between fields still run over the others (:func:`has_bad`).

Values are shown by :func:`mlx.utils.values.show`, and the nearest option is
suggested by :func:`mlx.utils.values.did_you_mean`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

from mlx.config.documents import NodePath, dotted
from mlx.config.reporting import IssueLog
from mlx.utils.values import did_you_mean, is_int, is_number, show

__all__ = [
    "ABSENT",
    "BAD",
    "DIRECTORY_NAME",
    "REQUIRED",
    "Bad",
    "Betas",
    "Bool",
    "Choice",
    "Field",
    "Float",
    "FreeMapping",
    "INT64_MAX",
    "INT64_MIN",
    "Int",
    "IntList",
    "MappingList",
    "Pattern",
    "Rule",
    "Section",
    "Str",
    "absent",
    "drop_absent",
    "has_bad",
    "optional",
]


class Bad:
    """Marker for a value that failed its rule (the error is already recorded)."""


#: The value of a field that failed its rule.
BAD = Bad()
#: The default of a field that must be given.
REQUIRED = object()
#: The value of an optional field that was not given (dropped by drop_absent).
ABSENT = object()


class Rule:
    """A check for one field; ``check`` records its own error and returns BAD."""

    expected = "a value"

    def __init__(self, *, nullable: bool = False) -> None:
        self.nullable = nullable

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` passes (null aside)."""
        raise NotImplementedError

    def normalize(self, value: Any) -> Any:
        """The value as the config holds it once it passed."""
        return value

    def hint(self, value: Any) -> str:
        """Advice appended to the error (``; did you mean adam?``), or ``""``."""
        return ""

    def describe(self) -> str:
        """What the field must be: ``an integer >= 1 or null``."""
        return f"{self.expected} or null" if self.nullable else self.expected

    def check(self, log: IssueLog, path: NodePath, value: Any) -> Any:
        """The normalised value, or BAD with the error recorded at ``path``."""
        if value is None and self.nullable:
            return None
        if self.accepts(value):
            return self.normalize(value)
        log.error(
            path,
            f"{dotted(path)} must be {self.describe()}, got {show(value)}"
            f"{self.hint(value)}",
        )
        return BAD


def _bounds(lo: Any, hi: Any, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi}"
    return ""


#: The range of every integer field: a signed 64-bit integer, the widest that
#: NumPy arrays, ``torch.manual_seed`` (which takes up to 2^64 - 1 but no more),
#: C extensions and the stores a run is recorded in all take. A bound of a field's
#: own lies within it.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Int(Rule):
    """An integer (not a bool) in ``[lo, hi]``, either bound optional; never outside
    the signed 64-bit range (:data:`INT64_MAX`), whatever the bounds say, so a value
    no backend can take is refused here instead of failing later inside one."""

    def __init__(self, lo: int | None = None, hi: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.lo, self.hi = lo, hi
        self.expected = "an integer" + _bounds(lo, hi, False, False)

    def accepts(self, value: Any) -> bool:
        return (
            is_int(value)
            and INT64_MIN <= value <= INT64_MAX
            and (self.lo is None or value >= self.lo)
            and (self.hi is None or value <= self.hi)
        )

    def hint(self, value: Any) -> str:
        if not is_int(value) or INT64_MIN <= value <= INT64_MAX:
            return ""
        if value > INT64_MAX and (self.hi is None or self.hi > INT64_MAX):
            return (
                f"; at most {INT64_MAX} (2^63 - 1): larger integers overflow in "
                "NumPy and torch"
            )
        if value < INT64_MIN and (self.lo is None or self.lo < INT64_MIN):
            return f"; at least {INT64_MIN} (-2^63)"
        return ""


class Float(Rule):
    """A finite number within the bounds given (open or closed); held as float."""

    def __init__(
        self,
        lo: float | None = None,
        hi: float | None = None,
        *,
        lo_open: bool = False,
        hi_open: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open
        self.expected = "a finite number" + _bounds(lo, hi, lo_open, hi_open)

    def accepts(self, value: Any) -> bool:
        if not is_number(value):
            return False
        try:
            x = float(value)
        except OverflowError:
            return False
        if not math.isfinite(x):
            return False
        if self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo):
            return False
        return not (
            self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi)
        )

    def normalize(self, value: Any) -> Any:
        return float(value)


class Bool(Rule):
    """``true`` or ``false``."""

    expected = "true or false"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


class Str(Rule):
    """A string with something besides white space."""

    expected = "a non-empty string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value.strip() != ""


class Pattern(Str):
    """A string matching ``pattern`` that is not only dots; ``expected`` says what
    it must be in words."""

    def __init__(self, pattern: re.Pattern[str], expected: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.pattern = pattern
        self.expected = expected

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, str)
            and self.pattern.match(value) is not None
            and value.strip(".") != ""
        )


class Choice(Rule):
    """One of ``options``; a near miss is suggested (difflib ratio >= ``cutoff``,
    compared in lower case with ``fold_case``)."""

    def __init__(
        self,
        *options: str,
        cutoff: float = 0.5,
        fold_case: bool = True,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.options = options
        self.cutoff = cutoff
        self.fold_case = fold_case
        self.expected = "one of " + ", ".join(repr(o) for o in options)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.options

    def hint(self, value: Any) -> str:
        if not isinstance(value, str):
            return ""
        word = value.lower() if self.fold_case else value
        return did_you_mean(word, self.options, self.cutoff)


class FreeMapping(Rule):
    """A free-form mapping: any keys, any values."""

    expected = "a mapping"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)


class IntList(Rule):
    """A list of integers; a bad element is reported at its own index."""

    def __init__(self, min_len: int, lo: int) -> None:
        super().__init__()
        self.min_len = min_len
        self.item = Int(lo)
        self.expected = f"a list of at least {min_len} integers >= {lo}"

    def check(self, log: IssueLog, path: NodePath, value: Any) -> Any:
        if not isinstance(value, list) or len(value) < self.min_len:
            shown = (
                f"a list of {len(value)}" if isinstance(value, list) else show(value)
            )
            log.error(path, f"{dotted(path)} must be {self.expected}, got {shown}")
            return BAD
        items = [self.item.check(log, (*path, i), x) for i, x in enumerate(value)]
        return BAD if has_bad(items) else items


class MappingList(Rule):
    """A list of mappings, each checked by ``item`` (a :class:`Section`) at its own
    index (``training.callbacks[1].class_path``)."""

    def __init__(self, item: Rule) -> None:
        super().__init__()
        self.item = item
        self.expected = "a non-empty list of mappings"

    def check(self, log: IssueLog, path: NodePath, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            log.error(
                path, f"{dotted(path)} must be {self.expected}, got {show(value)}"
            )
            return BAD
        items = [self.item.check(log, (*path, i), x) for i, x in enumerate(value)]
        return BAD if has_bad(items) else [drop_absent(x) for x in items]


class Betas(Rule):
    """Adam's two decay rates, each in [0, 1)."""

    expected = "a list of two numbers in [0, 1)"

    def accepts(self, value: Any) -> bool:
        item = Float(0, 1, hi_open=True)
        return (
            isinstance(value, list)
            and len(value) == 2
            and all(item.accepts(x) for x in value)
        )

    def normalize(self, value: Any) -> Any:
        return [float(x) for x in value]


#: A run's or a sweep's name, which names a directory and begins its ID as it is
#: (docs/design/run-names.md): a leading '-' would read as an option wherever the
#: ID is typed, a leading '.' would hide the directory, so neither is taken.
DIRECTORY_NAME = Pattern(
    re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$"),
    "a directory name of 1 to 100 ASCII letters, digits, '.', '_' or '-' that "
    "starts with a letter, digit or '_'",
)


class Field:
    """A schema entry: its rule and default (:data:`REQUIRED` when it has none).

    ``default`` may be a callable of the section resolved so far (``n_informative``
    defaults to ``n_features``); ``ignored`` makes the key a warning that is dropped.
    """

    def __init__(
        self, rule: Rule | None, default: Any = None, ignored: str = ""
    ) -> None:
        self.rule = rule
        self.default = default
        self.ignored = ignored


class Section(Rule):
    """A mapping with known fields: defaults filled, unknown keys warned about
    (kept as they are when ``free``).

    A field that fails its rule is kept as BAD so that checks between the other
    fields still run; see :func:`has_bad`.
    """

    expected = "a mapping"

    def __init__(self, fields: Mapping[str, Field], *, free: bool = False) -> None:
        super().__init__(nullable=True)
        self.fields = fields
        self.free = free

    def check(self, log: IssueLog, path: NodePath, value: Any) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            log.error(path, f"{dotted(path)} must be a mapping, got {show(value)}")
            return BAD
        out: dict[str, Any] = {}
        for key, field in self.fields.items():
            child = (*path, key)
            if field.ignored:
                if key in value:
                    log.warn(child, f"{dotted(child)}: {field.ignored}", key=True)
                continue
            if key in value:
                assert field.rule is not None
                out[key] = field.rule.check(log, child, value[key])
            elif field.default is REQUIRED:
                log.error(path, f"missing required field '{dotted(child)}'", child)
                out[key] = BAD
            elif not callable(field.default):
                out[key] = field.default
        derived = {
            key: field.default(out)
            for key, field in self.fields.items()
            if callable(field.default) and key not in value and not field.ignored
        }
        out = {
            key: derived.get(key, out.get(key))
            for key in self.fields
            if key in out or key in derived
        }
        if not self.free:
            log.unknown_keys(path, value, self.fields)
        else:
            out.update((k, x) for k, x in value.items() if k not in self.fields)
        return out


def has_bad(value: Any) -> bool:
    """Whether ``value`` (a checked field or section) holds BAD anywhere."""
    if value is BAD:
        return True
    if isinstance(value, dict):
        return any(has_bad(x) for x in value.values())
    if isinstance(value, list):
        return any(has_bad(x) for x in value)
    return False


def absent(section: Mapping[str, Any]) -> Any:
    """The default of a field that stays out of its section when not given."""
    return ABSENT


def optional(fields: Mapping[str, Field]) -> dict[str, Field]:
    """The same fields with no defaults: absent keys stay absent."""
    return {key: Field(f.rule, absent) for key, f in fields.items()}


def drop_absent(section: Mapping[str, Any]) -> dict[str, Any]:
    """``section`` without the optional fields that were not given, nested
    sections included."""
    return {
        key: drop_absent(value) if isinstance(value, dict) else value
        for key, value in section.items()
        if value is not ABSENT
    }
