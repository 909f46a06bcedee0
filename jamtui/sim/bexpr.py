"""Boolean expressions as hashicorp/go-bexpr reads them: the `filter=` of Nomad's and Consul's
list endpoints (Nomad api-docs "Filtering", Consul api-docs/features/filtering).

Pure, no I/O: `compile(text)` parses once (raising `BexprError` with go-bexpr's kind of
message for a bad expression), `Expression.matches(item)` evaluates against a decoded JSON
object. The grammar (go-bexpr grammar.peg):

    Or        <- And ("or" And)*
    And       <- Not ("and" Not)*
    Not       <- "not" Not / "(" Or ")" / Match
    Match     <- Selector ("==" | "!=") Value
               | Selector ("contains" | "not contains" | "matches" | "not matches") Value
               | Selector "is" ["not"] "empty"
               | Value ["not"] "in" Selector
    Selector  <- Ident ("." Ident | "[" String "]")*  |  "/" JSON-pointer-ish path
    Value     <- "double quoted" | `raw` | number | true | false | unquoted word

Selectors name fields as the API returns them (`Status`, `Meta.rack`, `TaskStates.web.State`,
`NodeMeta["x y"]`). A field missing from the object itself is an error, as go-bexpr reports a
struct field it cannot find; a key missing from a map below it is simply absent (never equal).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class BexprError(ValueError):
    """A bad expression (at compile) or a selector naming no field (at evaluation)."""


@dataclass(frozen=True)
class _Tok:
    kind: str  # word, str, op, lpar, rpar, lbr, rbr, dot, end
    text: str
    pos: int


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<op>==|!=)
  | (?P<lpar>\() | (?P<rpar>\)) | (?P<lbr>\[) | (?P<rbr>\]) | (?P<dot>\.)
  | (?P<word>[A-Za-z0-9_\-/:@+*]+)
""", re.VERBOSE)


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise BexprError(f"1:{pos + 1} ({pos}): no match found, expected: "
                             f"selector, value or operator, got {text[pos]!r}")
        kind = m.lastgroup or ""
        if kind == "str":
            try:
                out.append(_Tok("str", json.loads(m.group()), pos))
            except ValueError:
                raise BexprError(f"1:{pos + 1} ({pos}): invalid string literal") from None
        elif kind == "raw":
            out.append(_Tok("str", m.group()[1:-1], pos))
        elif kind != "ws":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


# -- the tree ----------------------------------------------------------------------------------

_MISSING = object()


@dataclass(frozen=True)
class Selector:
    path: tuple[str, ...]

    def __str__(self) -> str:
        return "/" + "/".join(self.path)

    def resolve(self, item: Any) -> Any:
        value = item
        for i, part in enumerate(self.path):
            if isinstance(value, dict):
                if part in value:
                    value = value[part]
                    continue
                if i == 0:  # a field of the object itself: go-bexpr's struct lookup fails
                    raise BexprError(
                        f"error finding value in datum: {self} at part {i}: couldn't find key: "
                        f"struct field with name \"{part}\"")
                return _MISSING  # a map's absent key
            if isinstance(value, list) and part.isdigit():
                idx = int(part)
                if idx < len(value):
                    value = value[idx]
                    continue
                return _MISSING
            return _MISSING
        return value


@dataclass(frozen=True)
class Match:
    op: str  # ==, !=, contains, not contains, matches, not matches, empty, not empty, in, not in
    selector: Selector
    value: Any = None

    def matches(self, item: Any) -> bool:
        field = self.selector.resolve(item)
        op = self.op
        if op in ("empty", "not empty"):
            empty = field is _MISSING or field is None or (
                hasattr(field, "__len__") and len(field) == 0)
            return empty if op == "empty" else not empty
        if op in ("==", "!="):
            same = field is not _MISSING and _equal(field, self.value)
            return same if op == "==" else not same
        if op in ("contains", "not contains", "in", "not in"):
            found = field is not _MISSING and _contains(field, self.value)
            return found if op in ("contains", "in") else not found
        if op in ("matches", "not matches"):
            hit = isinstance(field, str) and self.value.search(field) is not None
            return hit if op == "matches" else not hit
        raise BexprError(f"unknown operator {op}")


@dataclass(frozen=True)
class Not:
    inner: Any

    def matches(self, item: Any) -> bool:
        return not self.inner.matches(item)


@dataclass(frozen=True)
class Both:
    left: Any
    right: Any
    op: str  # and | or

    def matches(self, item: Any) -> bool:
        if self.op == "and":
            return self.left.matches(item) and self.right.matches(item)
        return self.left.matches(item) or self.right.matches(item)


def _coerce(field: Any, value: str) -> Any:
    """go-bexpr converts the literal to the field's type before comparing."""
    if isinstance(field, bool):
        low = value.lower()
        if low in ("true", "1", "t"):
            return True
        if low in ("false", "0", "f"):
            return False
        raise BexprError(f"failed to convert value {value!r} to bool")
    if isinstance(field, (int, float)):
        try:
            return type(field)(value) if isinstance(field, int) and value.lstrip("-").isdigit() \
                else float(value)
        except ValueError:
            raise BexprError(f"failed to convert value {value!r} to a number") from None
    return value


def _equal(field: Any, value: str) -> bool:
    if field is None:
        return value == ""
    if isinstance(field, (dict, list)):
        return False
    return bool(_coerce(field, value) == field)


def _contains(field: Any, value: str) -> bool:
    if isinstance(field, str):
        return value in field
    if isinstance(field, dict):
        return value in field
    if isinstance(field, list):
        return any(not isinstance(e, (dict, list)) and _equal(e, value) for e in field)
    return False


# -- the parser --------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> _Tok:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def is_word(self, word: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok.kind == "word" and tok.text == word

    def fail(self, expected: str) -> BexprError:
        tok = self.peek()
        got = "end of input" if tok.kind == "end" else repr(tok.text)
        return BexprError(f"1:{tok.pos + 1} ({tok.pos}): no match found, expected: "
                          f"{expected}, got {got}")

    def parse(self) -> Any:
        node = self.or_()
        if self.peek().kind != "end":
            raise self.fail('"and", "or" or end of input')
        return node

    def or_(self) -> Any:
        node = self.and_()
        while self.is_word("or"):
            self.take()
            node = Both(node, self.and_(), "or")
        return node

    def and_(self) -> Any:
        node = self.not_()
        while self.is_word("and"):
            self.take()
            node = Both(node, self.not_(), "and")
        return node

    def not_(self) -> Any:
        if self.is_word("not") and not self._value_in_ahead():
            self.take()
            return Not(self.not_())
        if self.peek().kind == "lpar":
            self.take()
            node = self.or_()
            if self.take().kind != "rpar":
                self.i -= 1
                raise self.fail('")"')
            return node
        return self.match()

    def _value_in_ahead(self) -> bool:
        # `not` followed by `in`/`not in` means a value named "not"; rare, go-bexpr agrees
        return self.is_word("in", 1) or (self.is_word("not", 1) and self.is_word("in", 2))

    def selector(self) -> Selector:
        tok = self.peek()
        if tok.kind != "word" or tok.text in ("and", "or", "not", "in", "is"):
            raise self.fail("selector")
        self.take()
        if tok.text.startswith("/"):  # JSON-pointer form
            return Selector(tuple(p for p in tok.text.split("/") if p))
        parts = [tok.text]
        while True:
            if self.peek().kind == "dot":
                self.take()
                nxt = self.take()
                if nxt.kind not in ("word", "str"):
                    self.i -= 1
                    raise self.fail("selector part")
                parts.append(nxt.text)
            elif self.peek().kind == "lbr":
                self.take()
                nxt = self.take()
                if nxt.kind != "str" or self.take().kind != "rbr":
                    self.i -= 1
                    raise self.fail('quoted key and "]"')
                parts.append(nxt.text)
            else:
                return Selector(tuple(parts))

    def value(self) -> str:
        tok = self.peek()
        if tok.kind == "str" or (tok.kind == "word" and tok.text not in ("and", "or")):
            self.take()
            return tok.text
        raise self.fail("value")

    def match(self) -> Match:
        # Value ["not"] "in" Selector
        start = self.i
        if self.peek().kind in ("str", "word") and (
                self.is_word("in", 1) or (self.is_word("not", 1) and self.is_word("in", 2))):
            value = self.value()
            negate = self.is_word("not")
            if negate:
                self.take()
            self.take()  # in
            return Match("not in" if negate else "in", self.selector(), value)
        self.i = start
        sel = self.selector()
        tok = self.peek()
        if tok.kind == "op":
            self.take()
            return Match(tok.text, sel, self.value())
        if self.is_word("is"):
            self.take()
            negate = self.is_word("not")
            if negate:
                self.take()
            if not self.is_word("empty"):
                raise self.fail('"empty"')
            self.take()
            return Match("not empty" if negate else "empty", sel)
        negate = self.is_word("not")
        if negate:
            self.take()
        if self.is_word("contains"):
            self.take()
            return Match("not contains" if negate else "contains", sel, self.value())
        if self.is_word("matches"):
            self.take()
            raw = self.value()
            try:
                pattern = re.compile(raw)
            except re.error as exc:
                raise BexprError(f"error parsing regexp: {exc}: `{raw}`") from None
            return Match("not matches" if negate else "matches", sel, pattern)
        raise self.fail('"==", "!=", "is", "contains", "matches", "in" or "not"')


@dataclass(frozen=True)
class Expression:
    text: str
    root: Any

    def matches(self, item: Any) -> bool:
        return bool(self.root.matches(item))

    def filter(self, items: list[Any]) -> list[Any]:
        return [i for i in items if self.matches(i)]


def compile(text: str) -> Expression:
    """Parse `text`; BexprError for an expression go-bexpr would refuse."""
    if not text.strip():
        raise BexprError("1:1 (0): no match found, expected: expression")
    return Expression(text, _Parser(text).parse())
