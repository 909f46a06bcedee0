"""`filter=` expressions on the lab's list endpoints, as hashicorp/go-bexpr evaluates them.

Grammar followed (go-bexpr's README and grammar.peg; Consul's api-docs/features/filtering):

    Expression := Or
    Or         := And ("or" And)*
    And        := Not ("and" Not)*
    Not        := "not" Not | "(" Or ")" | Match
    Match      := Selector ("==" | "!=") Value
                | Selector "is" ["not"] "empty"
                | Value ["not"] "in" Selector
                | Selector ["not"] "contains" Value
                | Selector ["not"] "matches" Value
    Selector   := Name ("." Name | "[" String "]")*
    Value      := "double-quoted" | `raw` | number | true | false | bare-word

It works on the JSON objects an endpoint answers (dicts, lists, scalars): a selector names
fields as the API spells them (`Service.Tags`, `Node.Meta["rack"]`); one that names no field
is an error, as in go-bexpr (`Selector "X" is not valid`); a map key that is absent compares
as not equal. A selector through a list (`Checks.Status`) yields every element's value, and
`==` then holds when one of them matches. Consul answers a bad expression with 400 and
`Failed to create boolean expression evaluator: …`.

This is the Consul side; it takes plain JSON so that the Nomad side (go-bexpr too) can share
it: `parse(expression)` once, then `matches(tree, obj)` per item, or `apply(expression, items)`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

PREFIX = "Failed to create boolean expression evaluator: "


class FilterError(ValueError):
    """A filter that does not parse or names a field that does not exist (a 400)."""


@dataclass(frozen=True)
class Selector:
    path: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Match:
    op: str  # == != empty in contains matches
    selector: Selector
    value: str = ""
    negate: bool = False


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or | not
    args: tuple[Any, ...]


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<op>==|!=|\(|\)|\[|\]|\.)
    | (?P<word>[A-Za-z0-9_\-:/+*@]+(?:\.[0-9]+)?)
    )""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FilterError(f"1:{pos + 1}: no match found, expected a selector or value")
        pos = m.end()
        kind = m.lastgroup or ""
        raw = m.group(kind)
        if kind == "str":
            out.append(("value", bytes(raw[1:-1], "utf-8").decode("unicode_escape")))
        elif kind == "raw":
            out.append(("value", raw[1:-1]))
        else:
            out.append((kind, raw))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, n: int = 0) -> tuple[str, str] | None:
        j = self.i + n
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise FilterError("unexpected end of expression")
        self.i += 1
        return tok

    def keyword(self, word: str, n: int = 0) -> bool:
        tok = self.peek(n)
        return tok is not None and tok[0] == "word" and tok[1] == word

    def parse(self) -> Any:
        tree = self.or_()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.toks[self.i][1]!r}")
        return tree

    def or_(self) -> Any:
        args = [self.and_()]
        while self.keyword("or"):
            self.i += 1
            args.append(self.and_())
        return args[0] if len(args) == 1 else BoolOp("or", tuple(args))

    def and_(self) -> Any:
        args = [self.not_()]
        while self.keyword("and"):
            self.i += 1
            args.append(self.not_())
        return args[0] if len(args) == 1 else BoolOp("and", tuple(args))

    def not_(self) -> Any:
        if self.keyword("not") and not (self.keyword("in", 1) or self.keyword("contains", 1)
                                        or self.keyword("matches", 1)):
            self.i += 1
            return BoolOp("not", (self.not_(),))
        if self.peek() == ("op", "("):
            self.i += 1
            inner = self.or_()
            if self.take() != ("op", ")"):
                raise FilterError("expected ')'")
            return inner
        return self.match()

    def value(self) -> str:
        kind, text = self.take()
        if kind not in ("value", "word"):
            raise FilterError(f"expected a value, found {text!r}")
        return text

    def selector(self) -> Selector:
        kind, text = self.take()
        if kind != "word" or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", text):
            raise FilterError(f"expected a selector, found {text!r}")
        path = [text]
        while True:
            tok = self.peek()
            if tok == ("op", "."):
                self.i += 1
                kind, name = self.take()
                if kind != "word":
                    raise FilterError(f"expected a field name after '.', found {name!r}")
                path.append(name)
            elif tok == ("op", "["):
                self.i += 1
                key = self.value()
                if self.take() != ("op", "]"):
                    raise FilterError("expected ']'")
                path.append(key)
            else:
                return Selector(tuple(path))

    def match(self) -> Match:
        # Value ["not"] "in" Selector
        if self.keyword("in", 1) or (self.keyword("not", 1) and self.keyword("in", 2)):
            value = self.value()
            negate = self.keyword("not")
            self.i += 2 if negate else 1
            return Match("in", self.selector(), value, negate)
        sel = self.selector()
        tok = self.peek()
        if tok in (("op", "=="), ("op", "!=")):
            self.i += 1
            return Match("==", sel, self.value(), tok[1] == "!=")
        if self.keyword("is"):
            self.i += 1
            negate = self.keyword("not")
            if negate:
                self.i += 1
            if not self.keyword("empty"):
                raise FilterError("expected 'empty' after 'is'")
            self.i += 1
            return Match("empty", sel, "", negate)
        negate = self.keyword("not")
        if negate:
            self.i += 1
        for op in ("contains", "matches"):
            if self.keyword(op):
                self.i += 1
                value = self.value()
                if op == "matches":
                    try:
                        re.compile(value)
                    except re.error as exc:
                        raise FilterError(f"invalid regular expression {value!r}: {exc}"
                                          ) from None
                return Match(op, sel, value, negate)
        found = tok[1] if tok else "end of expression"
        raise FilterError(f"expected an operator after selector {str(sel)!r}, found {found!r}")


def parse(expression: str) -> Any:
    """The expression's tree; FilterError (its message without Consul's prefix) if it is bad."""
    return _Parser(expression).parse()


_MISSING = object()


def _resolve(obj: Any, path: tuple[str, ...], full: Selector) -> Any:
    """The value(s) a selector names in `obj`; _MISSING for an absent map key."""
    cur: Any = obj
    for depth, part in enumerate(path):
        if isinstance(cur, list):
            vals = [_resolve(item, path[depth:], full) for item in cur]
            flat: list[Any] = []
            for v in vals:
                if v is _MISSING:
                    continue
                flat.extend(v if isinstance(v, list) else [v])
            return flat
        if isinstance(cur, dict):
            if part in cur:
                cur = cur[part]
                continue
            # a map of free keys (Meta, NodeMeta, TaggedAddresses): an absent key is no match
            if depth > 0 and all(isinstance(v, str) for v in cur.values()):
                return _MISSING
            raise FilterError(f"Selector {json.dumps(str(full))} is not valid")
        if cur is None:
            return _MISSING
        raise FilterError(f"Selector {json.dumps(str(full))} is not valid")
    return cur


def _equal(field: Any, value: str) -> bool:
    if isinstance(field, bool):
        return value.lower() == ("true" if field else "false")
    if isinstance(field, (int, float)):
        try:
            return float(value) == float(field)
        except ValueError:
            return False
    if field is None:
        return value == ""
    return str(field) == value


def _holds(m: Match, obj: Any) -> bool:
    field = _resolve(obj, m.selector.path, m.selector)
    if m.op == "empty":
        result = field is _MISSING or field in (None, "", [], {})
    elif field is _MISSING:
        result = False
    elif m.op == "==":
        result = (any(_equal(f, m.value) for f in field) if isinstance(field, list)
                  else _equal(field, m.value))
    elif m.op in ("in", "contains"):
        if isinstance(field, list):
            result = any(_equal(f, m.value) for f in field)
        elif isinstance(field, dict):
            result = m.value in field
        else:
            result = m.value in str(field)
    elif m.op == "matches":
        items = field if isinstance(field, list) else [field]
        result = any(re.search(m.value, str(f)) is not None for f in items)
    else:  # pragma: no cover - the parser makes no other
        raise FilterError(f"unknown operator {m.op}")
    return not result if m.negate else result


def matches(tree: Any, obj: Any) -> bool:
    if isinstance(tree, BoolOp):
        if tree.op == "and":
            return all(matches(t, obj) for t in tree.args)
        if tree.op == "or":
            return any(matches(t, obj) for t in tree.args)
        return not matches(tree.args[0], obj)
    return _holds(tree, obj)


def apply(expression: str | None, items: list[Any]) -> list[Any]:
    """The items the expression keeps (all of them for no expression); FilterError with
    Consul's full message when it is bad, also when it names a field no item has."""
    if not expression:
        return items
    try:
        tree = parse(expression)
        return [item for item in items if matches(tree, item)]
    except FilterError as exc:
        raise FilterError(PREFIX + str(exc)) from None
