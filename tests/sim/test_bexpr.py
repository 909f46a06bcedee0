"""go-bexpr's grammar, as Nomad's and Consul's `filter=` read it (jamtui/sim/bexpr.py)."""

from __future__ import annotations

import pytest

from jamtui.sim import bexpr

JOB = {"ID": "web", "Status": "running", "Type": "service", "Priority": 50, "Stop": False,
       "Meta": {"team": "ops", "tier": "front end"}, "Datacenters": ["jamlab", "dc2"],
       "TaskGroups": [{"Name": "web"}], "Tags": None}


@pytest.mark.parametrize("text,want", [
    ('Status == "running"', True),
    ('Status != "running"', False),
    ("Status == running", True),
    ("Priority == 50", True),
    ("Stop == false", True),
    ('Meta.team == "ops"', True),
    ('Meta["tier"] == "front end"', True),
    ('Meta.absent == "x"', False),
    ('Meta.absent != "x"', True),
    ('Datacenters contains "dc2"', True),
    ('Datacenters not contains "dc2"', False),
    ('"jamlab" in Datacenters', True),
    ('"dc9" not in Datacenters', True),
    ('ID contains "e"', True),
    ("Meta contains team", True),
    ('ID matches "^w.b$"', True),
    ("Tags is empty", True),
    ("Datacenters is not empty", True),
    ('Type == "batch" or Status == "running"', True),
    ('Type == "batch" and Status == "running"', False),
    ('not (Type == "batch")', True),
    ('Type == "batch" or Type == "system" and Status == "running"', False),
    ('(Type == "batch" or Type == "service") and Status == "running"', True),
    ("/Meta/team == ops", True),
    ("TaskGroups.0.Name == web", True),
])
def test_expressions(text: str, want: bool) -> None:
    assert bexpr.compile(text).matches(JOB) is want


@pytest.mark.parametrize("text", ["NotValid", "Status ==", "(Status == a", "== a",
                                  'Status = "a"', "Status == a and", ""])
def test_bad_expressions_are_refused_at_compile(text: str) -> None:
    with pytest.raises(bexpr.BexprError):
        bexpr.compile(text)


def test_a_field_the_object_does_not_have_is_an_error_at_evaluation() -> None:
    expr = bexpr.compile('InvalidField == "value"')
    with pytest.raises(bexpr.BexprError, match="error finding value in datum"):
        expr.matches(JOB)
