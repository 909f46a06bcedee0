"""Check history (jamtui/check_history.py): each check's state changes seen this session."""

from __future__ import annotations

from jamtui.check_history import CheckHistory
from jamtui.model import CheckInfo, ServiceInstance


def inst(status: str, output: str, node_status: str = "passing") -> ServiceInstance:
    return ServiceInstance("vs0/api-1", "api", "api-1", "vs0", "10.0.0.1", 80, checks=(
        CheckInfo("serfHealth", "Serf Health Status", node_status, "Agent alive"),
        CheckInfo("http", "api health", status, output, "api-1")))


def test_changes_are_kept_with_time_and_output() -> None:
    h = CheckHistory()
    assert h.observe([inst("passing", "HTTP GET: 200 OK")], now=100) == 2
    assert h.observe([inst("passing", "HTTP GET: 200 OK (again)")], now=101) == 0
    assert h.observe([inst("critical", "HTTP GET: 503 Service Unavailable\nbody")], now=105) == 1
    assert h.observe([inst("passing", "HTTP GET: 200 OK")], now=110) == 1
    seen = h.of("vs0/api-1", "http")
    assert [(t.at, t.previous, t.status) for t in seen] == [
        (100, "", "passing"), (105, "passing", "critical"), (110, "critical", "passing")]
    assert seen[0].first and not seen[1].first
    assert seen[1].output == "HTTP GET: 503 Service Unavailable\nbody"  # in full
    assert set(h.for_instance("vs0/api-1")) == {"serfHealth", "http"}
    assert h.of("vs0/api-1", "nope") == []


def test_only_the_last_changes_are_kept() -> None:
    h = CheckHistory(keep=3)
    for n in range(10):
        h.observe([inst("passing" if n % 2 else "critical", str(n))], now=n)
    assert [t.output for t in h.of("vs0/api-1", "http")] == ["7", "8", "9"]
