"""One ``--where`` language for every stage: conditions over the manifest's columns.

``augment --where`` and ``dataset build --where/--test-where/--val-where`` select rows
through :func:`query_rows`, so ``fret >= 10`` picks the same files in every stage. The
manifest keeps extra columns as text (``fret`` = ``"03"``); a column whose filled cells
all read as numbers is compared as numbers, any other column as text.

The language is a small subset of pandas' query syntax, checked node by node on Python's
own parse tree and evaluated here, so an expression can name columns and constants but
never call a function, reach an attribute or read a variable:

- ``==  !=  <  <=  >  >=``, chained (``5 <= fret <= 7``), and ``in`` / ``not in`` a list
  (``tone in ('raw', 'clean')``; ``== [...]`` means ``in`` too, as in pandas);
- ``and  or  not`` (also ``&  |  ~``, with the precedence of ``and``/``or``) and parentheses;
- column names as they are, or in backticks (`` `my column` ``);
- quoted text, numbers, ``True`` and ``False``;
- ``column=value``: equality with an unquoted value (``guitar=les_paul``); in a list of
  filters, several on one column are alternatives and the rest must all hold.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from guitarlab.corpus.errors import GuitarlabError

EXAMPLE = 'e.g. "tone != \'distorted\'", "fret >= 6" or guitar=les_paul'
# a quoted string (left as it is), a `backticked name`, or an & or | between conditions
_TOKEN_RE = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|`([^`]*)`|(&)|(\|)""")
_SHORTHAND_RE = re.compile(r"^\s*([A-Za-z_]\w*|`[^`]+`)\s*=\s*([^=<>!].*?)\s*$")
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FLIPPED = {ast.Lt: ast.Gt(), ast.LtE: ast.GtE(), ast.Gt: ast.Lt(), ast.GtE: ast.LtE()}
_SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def numeric_view(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with every text column whose values are all numbers (or empty) as numbers.

    Extra manifest columns are stored as text (``fret`` = ``"03"``); queries compare
    them as numbers through this view, so ``"fret >= 6"`` means what it says.
    """
    out = rows.copy()
    for column in out.columns:
        numbers = as_numbers(out[column])
        if numbers is not None:
            out[column] = numbers
    return out


def as_numbers(values: pd.Series) -> pd.Series | None:
    """``values`` as numbers (empty cells NaN) when every filled cell is one, else None."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_numeric_dtype(dtype):
        return values
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        return None
    text = values.astype(str).str.strip()
    filled = text[text != ""]
    if filled.empty:
        return None
    if pd.to_numeric(filled.iloc[:64], errors="coerce").isna().any():
        return None  # a text column shows it in its first cells: no need to parse 100k
    numbers = pd.to_numeric(filled, errors="coerce")
    if numbers.isna().any():
        return None
    return pd.to_numeric(text.where(text != ""), errors="coerce")


def query_rows(
    rows: pd.DataFrame,
    where: str | Sequence[str] | None,
    *,
    option: str = "--where",
    error: type[GuitarlabError] = GuitarlabError,
) -> pd.DataFrame:
    """The rows of ``rows`` that every filter of ``where`` selects (all rows for None).

    ``where`` is one condition or several (``augment --where`` repeated): ``column=value``
    filters on one column are alternatives, everything else must hold. A bad expression or
    an unknown column raises ``error`` (the caller's stage class) with one line naming the
    ``option``, the expression and the columns there are.

    Examples
    --------
    >>> frame = pd.DataFrame({"guitar": ["a", "b", "c"], "fret": ["3", "10", "12"]})
    >>> list(query_rows(frame, "fret >= 10")["guitar"])
    ['b', 'c']
    >>> list(query_rows(frame, ["guitar=a", "guitar=c"])["fret"])
    ['3', '12']
    >>> list(query_rows(frame, "guitar in ('a', 'b') and not fret == 3")["guitar"])
    ['b']
    """
    if where is None:
        return rows
    filters = [where] if isinstance(where, str) else list(where)
    numbers: dict[str, pd.Series | None] = {}  # per column, only for the columns named
    keep = np.ones(len(rows), dtype=bool)
    alternatives: dict[str, np.ndarray] = {}
    for text in filters:
        query = _Query(rows, numbers, str(text), option, error)
        shorthand = query.shorthand()
        if shorthand is None:
            keep &= query.mask(query.parse())
        else:
            column, value = shorthand
            hit = query.equal(column, value)
            alternatives[column] = alternatives.get(column, np.zeros(len(rows), bool)) | hit
    for hit in alternatives.values():
        keep &= hit
    return rows[keep]


def query_columns(expression: str | None, columns: Sequence[str]) -> list[str]:
    """The manifest columns an expression names, in order of appearance (not in quotes).

    >>> query_columns("tone == 'fret' and `my col` >= 2", ["fret", "tone", "my col"])
    ['tone', 'my col']
    """
    if not expression:
        return []
    unquoted = _TOKEN_RE.sub(lambda m: " " if m.group(1) is not None else m.group(0), expression)
    names = re.findall(r"`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*)", unquoted)
    known, out = set(map(str, columns)), []
    for quoted, plain in names:
        name = quoted or plain
        if name in known and name not in out:
            out.append(name)
    return out


class _Column(str):
    """A column named in an expression (a str, so it prints as its name)."""


class _Query:
    """One condition of ``query_rows``: its text, the rows it reads, and how it fails."""

    def __init__(
        self,
        rows: pd.DataFrame,
        numbers: dict[str, pd.Series | None],
        text: str,
        option: str,
        error: type[GuitarlabError],
    ) -> None:
        self.rows, self.numbers, self.text = rows, numbers, text
        self.option, self.error = option, error
        self.names: dict[str, str] = {}

    def fail(self, reason: str) -> GuitarlabError:
        known = ", ".join(map(str, self.rows.columns)) or "none"
        return self.error(f"{self.option} {self.text!r}: {reason}; columns: {known}")

    # ------------------------------------------------------------ parsing

    def shorthand(self) -> tuple[str, str] | None:
        """``(column, value)`` for ``column=value`` (not Python, so it never parses as such)."""
        if "==" in self.text or self._parses():
            return None
        match = _SHORTHAND_RE.match(self.text)
        if not match:
            return None
        column = match.group(1).strip("`")
        self.column(column)
        return column, match.group(2).strip().strip("'\"")

    def _prepared(self) -> str:
        """The text with backticked names as placeholders and ``&``/``|`` as and/or."""

        def swap(match: re.Match) -> str:
            quoted, name, amp, _bar = match.groups()
            if quoted is not None:
                return quoted
            if name is not None:
                key = f"__column_{len(self.names)}__"
                self.names[key] = name
                return f" {key} "
            return " and " if amp else " or "

        self.names = {}
        return _TOKEN_RE.sub(swap, self.text)

    def _parses(self) -> bool:
        try:
            ast.parse(self._prepared().strip(), mode="eval")
        except SyntaxError:
            return False
        return True

    def parse(self) -> ast.expr:
        if not self.text.strip():
            raise self.fail(f"is empty; give a condition, {EXAMPLE}")
        try:
            return ast.parse(self._prepared().strip(), mode="eval").body
        except SyntaxError as exc:
            raise self.error(
                f"{self.option} {self.text!r} is not a valid query over the manifest columns "
                f"({exc.msg}); {EXAMPLE}; columns: {', '.join(map(str, self.rows.columns))}"
            ) from None

    # ------------------------------------------------------------ evaluating

    def column(self, name: str) -> _Column:
        name = self.names.get(name, name)
        if name not in self.rows.columns:
            raise self.fail(f"no column {name!r}")
        return _Column(name)

    def number_view(self, column: str) -> pd.Series | None:
        """The column as numbers, when it is a numeric column (see :func:`as_numbers`)."""
        if column not in self.numbers:
            self.numbers[column] = as_numbers(self.rows[column])
        return self.numbers[column]

    def numeric(self, column: str) -> bool:
        return self.number_view(column) is not None

    def text_of(self, column: str) -> pd.Series:
        return self.rows[column].astype(str)

    def mask(self, node: ast.expr) -> np.ndarray:
        """A condition node as one boolean per row."""
        if isinstance(node, ast.BoolOp):
            parts = [self.mask(value) for value in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            return combine.reduce(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
            return ~self.mask(node.operand)
        if isinstance(node, ast.Compare):
            out = np.ones(len(self.rows), dtype=bool)
            left = self.operand(node.left)
            for op, node_right in zip(node.ops, node.comparators, strict=True):
                right = self.operand(node_right)
                out &= self.compare(left, op, right)
                left = right
            return out
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return np.full(len(self.rows), node.value)
        if isinstance(node, (ast.Name, ast.Constant)):
            raise self.fail(f"{ast.unparse(node)!r} is not a condition; compare it, {EXAMPLE}")
        raise self.fail(self._unsupported(node))

    def operand(self, node: ast.expr) -> object:
        """A column, a constant or a list of constants."""
        if isinstance(node, ast.Name):
            return self.column(node.id)
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)):
            return node.value
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, (int, float))
            and not isinstance(node.operand.value, bool)
        ):
            value = node.operand.value
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            values = tuple(self.operand(item) for item in node.elts)
            if any(isinstance(v, (_Column, tuple)) for v in values):
                raise self.fail("a list holds quoted text or numbers only")
            return values
        raise self.fail(self._unsupported(node))

    def _unsupported(self, node: ast.expr) -> str:
        part = ast.unparse(node)
        if isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
            return f"{part!r}: calls and attributes are not part of the query language ({EXAMPLE})"
        if isinstance(node, ast.BinOp):
            return f"{part!r}: arithmetic is not part of the query language; compare a column with a value"
        return f"{part!r} is not a column, a number or quoted text"

    def compare(self, left: object, op: ast.cmpop, right: object) -> np.ndarray:
        """One comparison; a column against a value compares as that column's kind."""
        if isinstance(op, (ast.In, ast.NotIn)) or isinstance(right, tuple):
            if not isinstance(right, tuple) or not isinstance(
                op, (ast.In, ast.NotIn, ast.Eq, ast.NotEq)
            ):
                raise self.fail("'in' takes a list, e.g. tone in ('raw', 'clean')")
            if not isinstance(left, _Column):
                raise self.fail("put the column before 'in', e.g. tone in ('raw', 'clean')")
            hit = np.zeros(len(self.rows), dtype=bool)
            for value in right:
                hit |= self.equal(left, value)
            return ~hit if isinstance(op, (ast.NotIn, ast.NotEq)) else hit
        if isinstance(left, tuple):
            raise self.fail("a list goes after 'in', e.g. tone in ('raw', 'clean')")
        if not isinstance(left, _Column) and isinstance(right, _Column):
            left, right, op = right, left, _FLIPPED.get(type(op), op)
        compare = _COMPARE[type(op)]
        if not isinstance(left, _Column):  # two constants: the same answer for every row
            return np.full(len(self.rows), bool(compare(left, right)))
        if isinstance(right, _Column):
            if self.numeric(left) and self.numeric(right):
                return _bools(compare(self.number_view(left), self.number_view(right)))
            return _bools(compare(self.text_of(left), self.text_of(right)))
        if isinstance(op, (ast.Eq, ast.NotEq)):
            hit = self.equal(left, right)
            return hit if isinstance(op, ast.Eq) else ~hit
        if self.numeric(left):
            number = _number(right)
            if number is None:
                raise self.fail(
                    f"column {left!r} holds numbers; compare it with a number, "
                    f"e.g. {left} {_SYMBOL[type(op)]} 6"
                )
            return _bools(compare(self.number_view(left), number))
        if not isinstance(right, str):
            cells = self.text_of(left)
            sample = next((v for v in cells if v and _number(v) is None), "")
            raise self.fail(
                f"column {left!r} holds text ({sample!r}), not numbers; compare it with "
                f"quoted text or with == / !="
            )
        return _bools(compare(self.text_of(left), right))

    def equal(self, column: str, value: object) -> np.ndarray:
        """Rows whose ``column`` equals ``value``: as numbers when both are, else as text."""
        number = _number(value)  # text that is no number never needs the column as numbers
        if number is not None and self.numeric(column):
            return _bools(self.number_view(column) == number)
        if isinstance(value, bool):
            value = str(value)
        elif isinstance(value, float) and value.is_integer():
            value = str(int(value))
        return _bools(self.text_of(column) == str(value))


def _number(value: object) -> float | None:
    """``value`` as a number, or None for text that is not one (and for True/False)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def _bools(series: pd.Series) -> np.ndarray:
    return series.fillna(False).to_numpy(dtype=bool)
