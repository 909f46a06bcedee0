"""Real traffic through the lab: HAProxy stand-in -> Fabio -> allocation servers.

Shapes: fabio's admin API `/api/routes` (fabio.io/docs/ref, "Routing" and the UI/API port)
and HAProxy 2.6's stats CSV (docs.haproxy.org/2.6/management.html, "9.1 CSV format"),
checked against the header Debian's haproxy 2.6.12 prints (tests/fixtures/haproxy/).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import requests

from jamtui.sim.lab import Lab
from tests.helpers import wait_for

FIXTURES = Path(__file__).parent.parent / "fixtures" / "haproxy"


def stats(lab: Lab) -> dict[tuple[str, str], dict[str, str]]:
    text = requests.get(f"{lab.urls['haproxy_stats']}/stats;csv", timeout=5).text
    lines = text.splitlines()
    assert lines[0].startswith("# ") and all(line.endswith(",") for line in lines)
    reader = csv.DictReader(io.StringIO(text[2:]))
    return {(r["pxname"], r["svname"]): r for r in reader}


def via_haproxy(lab: Lab, host: str, path: str = "/") -> requests.Response:
    return requests.get(f"{lab.urls['haproxy']}{path}", headers={"Host": host}, timeout=5)



def test_stats_header_is_haproxy_26s() -> None:
    from jamtui.sim.haproxy import COLUMNS

    real = (FIXTURES / "stats-2.6.12.csv").read_text().splitlines()[0][2:].split(",")
    assert real[-1] == ""  # every line ends with a comma
    assert real[:-1] == COLUMNS and len(COLUMNS) == 128  # the module columns after "-" too


def test_a_request_reaches_a_named_instance_and_moves_the_counters(lab: Lab) -> None:
    wait_for(lambda: stats(lab)[("fabio", "BACKEND")]["status"] == "UP")
    before = stats(lab)
    seen = set()
    for _ in range(6):
        resp = via_haproxy(lab, "example.jamfox.dev", "/hello?x=1")
        assert resp.status_code == 200
        assert resp.text.startswith("Hello from example.web[")
        assert "GET example.jamfox.dev/hello?x=1" in resp.text
        seen.add(resp.headers["X-Jamlab-Instance"])
    assert len(seen) >= 2  # balanced over more than one instance
    after = stats(lab)
    front = ("http", "FRONTEND")
    assert int(after[front]["stot"]) - int(before[front]["stot"]) == 6
    assert int(after[front]["hrsp_2xx"]) >= 6 and after[front]["type"] == "0"
    servers = [k for k in after if k[0] == "fabio" and k[1] != "BACKEND"]
    assert sorted(k[1] for k in servers) == ["vs0", "vs1", "vs2"]  # haproxy.cfg.j2's names
    assert sum(int(after[k]["lbtot"]) - int(before[k]["lbtot"]) for k in servers) == 6
    assert {after[k]["type"] for k in servers} == {"2"}
    assert int(after[("fabio", "BACKEND")]["bout"]) > int(before[("fabio", "BACKEND")]["bout"])


def test_fabio_routes_only_passing_instances_and_null_when_empty(lab: Lab) -> None:
    fabio = lab.fabio_urls()[0]
    assert requests.get(f"{fabio}/health", timeout=5).text == "OK"
    routes = requests.get(f"{fabio}/api/routes", timeout=5).json()
    example = [r for r in routes if r["service"] == "example"]
    assert len(example) == 3
    for r in example:
        assert r["src"] == "example.jamfox.dev/" and r["cmd"] == "route add"
        assert abs(r["weight"] - 1 / 3) < 1e-9 and r["rate1"] == 0 and r["pct99"] == 0
        assert {"service", "host", "path", "src", "dst", "opts", "weight"} <= r.keys()

    # one instance fails its check: it leaves the table
    def first_check() -> tuple[str, str]:
        c = next(c for c in lab.world.checks.values()
                 if c.service_name == "example" and c.service_id)
        return c.node, c.check_id

    node, check = lab.call(first_check)
    lab.call(lab.world.set_check, node, check, "critical", "HTTP GET: 503")
    routes = requests.get(f"{fabio}/api/routes", timeout=5).json()
    assert len([r for r in routes if r["service"] == "example"]) == 2
    # `jamtui lab` waits for this before its ready lines (#14): named while it lasts
    assert "is critical" in lab.wait_settled(0.3)
    lab.call(lab.world.set_check, node, check, "passing", "HTTP GET: 200")
    assert lab.wait_settled(5) == ""

    # unknown host: fabio answers 404 with no body
    lb = lab.urls[next(k for k in lab.urls if k.endswith(":lb"))]
    miss = requests.get(lb + "/", headers={"Host": "nothing.jamfox.dev"}, timeout=5)
    assert miss.status_code == 404 and miss.text == ""

    for job in ("example", "api"):
        lab.call(lab.world.stop_job, job)
    wait_for(lambda: requests.get(f"{fabio}/api/routes", timeout=5).text.strip() == "null")


def test_a_stopped_vs_node_takes_its_fabio_down_in_haproxy(lab: Lab) -> None:
    wait_for(lambda: stats(lab)[("fabio", "vs2")]["status"] == "UP")
    vm = next(v for v in lab.world.vms.values() if v.name == "vs2")
    lab.call(lab.world.vm_stop, vm.node, vm.vmid)
    wait_for(lambda: stats(lab)[("fabio", "vs2")]["status"] == "DOWN")
    row = stats(lab)[("fabio", "vs2")]
    assert row["check_status"] == "L4CON" and int(row["chkdown"]) >= 1
    # traffic still flows over the others
    assert via_haproxy(lab, "example.jamfox.dev").status_code == 200


def test_haproxy_fault_down_refuses_connections(lab: Lab) -> None:
    lab.set_fault("haproxy", "down")
    try:
        try:
            requests.get(f"{lab.urls['haproxy_stats']}/stats;csv", timeout=2)
        except requests.ConnectionError:
            pass
        else:
            raise AssertionError("the stats page answered while down")
    finally:
        lab.clear_fault()
    wait_for(lambda: requests.get(f"{lab.urls['haproxy_stats']}/stats;csv", timeout=2).ok)


def _filled(row: dict[str, str]) -> set[str]:
    return {k for k, v in row.items() if v not in ("", None)}


def test_stats_csv_has_the_real_haproxy_columns_and_names(lab: Lab) -> None:
    """The lab's stats page against Debian's haproxy 2.6.12 run with provisioners/'
    haproxy.cfg.j2 (tests/fixtures/haproxy/provisioned.cfg and the CSV it printed): the same
    128 columns in the same order, the same proxies and servers, and the same cells filled
    in each kind of row; `option httpchk` reads L7OK/200 on a server that is up."""
    fixture = FIXTURES / "stats-2.6.12-provisioned.csv"
    real_text = fixture.read_text()
    real = list(csv.DictReader(io.StringIO(real_text[2:])))
    lab_text = requests.get(f"{lab.urls['haproxy_stats']}/stats;csv", timeout=5).text
    assert lab_text.splitlines()[0] == real_text.splitlines()[0]
    assert len(lab_text.splitlines()[0][2:].rstrip(",").split(",")) == 128
    wait_for(lambda: stats(lab)[("fabio", "vs0")]["status"] == "UP")
    mine = stats(lab)
    assert [k for k in mine if k[1] in ("FRONTEND", "BACKEND")] == [
        ("http", "FRONTEND"), ("stats", "FRONTEND"), ("fabio", "BACKEND")]
    by_kind = {(r["pxname"], r["svname"]): r for r in real}
    assert _filled(mine[("http", "FRONTEND")]) == _filled(by_kind[("http", "FRONTEND")])
    assert _filled(mine[("stats", "FRONTEND")]) == _filled(by_kind[("stats", "FRONTEND")])
    assert _filled(mine[("fabio", "BACKEND")]) == _filled(by_kind[("fabio", "BACKEND")])
    up = mine[("fabio", "vs0")]
    assert _filled(up) == _filled(by_kind[("fabio", "vs0")])
    assert (up["check_status"], up["check_code"], up["check_desc"]) == (
        "L7OK", "200", "Layer7 check passed")
    assert up["check_health"] == by_kind[("fabio", "vs0")]["check_health"]  # rise+fall-1
