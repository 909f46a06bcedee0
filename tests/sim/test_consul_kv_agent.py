"""The lab's Consul KV locks, sessions, transactions, agent registration, Connect health and
`filter=`, driven by py-consul where it has a call for them. Each test names the page of
developer.hashicorp.com/consul/api-docs it follows."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import consul
import pytest
import requests
from consul.callback import CB

from jamtui.sim.consul_kv import renew_session
from jamtui.sim.lab import Lab
from tests.conftest import FAST
from tests.helpers import wait_for
from tests.sim.test_consul_api import client, raw, stop_vm


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=5, tick=0.2, traffic=False, **FAST) as running:
        yield running


def test_kv_delete_cas_only_on_the_modify_index(lab: Lab) -> None:
    """api-docs/kv#delete-key: `cas` deletes only when the ModifyIndex matches; `false`
    otherwise (the lab used to delete regardless)."""
    c = client(lab)
    assert c.kv.put("app/cas", "one") is True
    _, entry = c.kv.get("app/cas")
    stale = entry["ModifyIndex"]
    assert c.kv.put("app/cas", "two") is True
    assert c.kv.delete("app/cas", cas=stale) is False
    assert c.kv.get("app/cas")[1]["Value"] == b"two"
    _, entry = c.kv.get("app/cas")
    assert c.kv.delete("app/cas", cas=entry["ModifyIndex"]) is True
    assert c.kv.get("app/cas")[1] is None


def test_kv_put_cas_zero_is_create_only(lab: Lab) -> None:
    """api-docs/kv#create-update-key: `cas=0` writes only if the key does not exist."""
    c = client(lab)
    assert c.kv.put("app/once", "a", cas=0) is True
    assert c.kv.put("app/once", "b", cas=0) is False
    assert c.kv.get("app/once")[1]["Value"] == b"a"


def test_sessions_acquire_and_release(lab: Lab) -> None:
    """api-docs/session (create, info, list, node, destroy) and api-docs/kv (acquire,
    release): Session and LockIndex set on acquire; another session cannot take it; release
    clears Session; destroy releases what the session holds."""
    c = client(lab)
    sid = c.session.create(name="deploy-lock", lock_delay=0)
    other = c.session.create(name="other")
    _, info = c.session.info(sid)
    assert info["ID"] == sid and info["Name"] == "deploy-lock"
    assert info["Behavior"] == "release" and info["NodeChecks"] == ["serfHealth"]
    assert info["LockDelay"] == 0
    node = info["Node"]
    assert sid in [s["ID"] for s in c.session.list()[1]]
    assert sid in [s["ID"] for s in c.session.node(node)[1]]

    assert c.kv.put("locks/deploy", "me", acquire=sid) is True
    _, held = c.kv.get("locks/deploy")
    assert held["Session"] == sid and held["LockIndex"] == 1
    assert c.kv.put("locks/deploy", "them", acquire=other) is False
    assert c.kv.put("locks/deploy", "x", release=other) is False
    assert c.kv.put("locks/deploy", "me", release=sid) is True
    _, free = c.kv.get("locks/deploy")
    assert "Session" not in free and free["LockIndex"] == 1
    assert c.kv.put("locks/deploy", "them", acquire=other) is True
    assert c.kv.get("locks/deploy")[1]["LockIndex"] == 2

    assert c.session.destroy(other) is True
    assert "Session" not in c.kv.get("locks/deploy")[1]
    assert c.session.info(other)[1] is None
    r = raw(lab, "GET", f"/v1/session/info/{other}")
    assert r.status_code == 200 and r.json() == []  # an empty list, never null
    c.session.destroy(sid)


def test_acquire_with_an_unknown_session_is_a_500(lab: Lab) -> None:
    """api-docs/kv#create-update-key, Consul's state store: `invalid session "<id>"`."""
    bogus = "11111111-2222-3333-4444-555555555555"
    r = raw(lab, "PUT", f"/v1/kv/locks/x?acquire={bogus}", data=b"v")
    assert r.status_code == 500
    assert r.text == f'invalid session "{bogus}"'
    assert raw(lab, "GET", "/v1/kv/locks/x").status_code == 404


def test_delete_behavior_session_removes_its_keys(lab: Lab) -> None:
    """api-docs/session#create-session: Behavior "delete" deletes held keys when it ends."""
    c = client(lab)
    sid = c.session.create(name="ephemeral", behavior="delete")
    assert c.kv.put("ephemeral/me", "here", acquire=sid)
    c.session.destroy(sid)
    assert c.kv.get("ephemeral/me")[1] is None


def test_txn_all_or_nothing(lab: Lab) -> None:
    """api-docs/txn#create-transaction: results for each op (values blanked for writes);
    one failing op rolls back the rest and answers 409 with Errors[OpIndex, What]."""
    c = client(lab)
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    # py-consul's txn.put sends no token (it passes no headers): its own HTTP layer with them
    done = c.http.put(CB.json(), "/v1/txn", headers=c.prepare_headers(), data=json.dumps([
        {"KV": {"Verb": "set", "Key": "txn/a", "Value": b64("1")}},
        {"KV": {"Verb": "set", "Key": "txn/b", "Value": b64("2")}},
        {"KV": {"Verb": "get", "Key": "txn/a"}},
    ]))
    assert done["Errors"] is None
    kinds = [r["KV"] for r in done["Results"]]
    assert kinds[0]["Key"] == "txn/a" and kinds[0]["Value"] is None
    assert kinds[2]["Value"] == b64("1")
    assert kinds[0]["ModifyIndex"] == kinds[1]["ModifyIndex"]  # one Raft entry
    index = kinds[0]["ModifyIndex"]
    r = raw(lab, "PUT", "/v1/txn", json=[
        {"KV": {"Verb": "set", "Key": "txn/c", "Value": b64("3")}},
        {"KV": {"Verb": "cas", "Key": "txn/a", "Value": b64("9"), "Index": index + 1000}},
    ])
    assert r.status_code == 409
    assert r.json()["Results"] is None
    assert r.json()["Errors"] == [{"OpIndex": 1,
                                   "What": 'failed to set key "txn/a", index is stale'}]
    assert c.kv.get("txn/c")[1] is None  # rolled back
    assert c.kv.get("txn/a")[1]["Value"] == b"1"


def test_agent_service_and_ttl_check(lab: Lab) -> None:
    """api-docs/agent/service#register-service and #deregister-service, api-docs/agent/check
    (register-check, ttl-check-pass/warn/fail, ttl-check-update, deregister-check)."""
    c = client(lab)
    assert c.agent.service.register("billing", service_id="billing-1", port=8088,
                                    tags=["v1"], check=consul.Check.ttl("30s")) is True
    _, nodes = c.health.service("billing")
    assert [n["Service"]["ID"] for n in nodes] == ["billing-1"]
    check = next(ch for ch in nodes[0]["Checks"] if ch["CheckID"] == "service:billing-1")
    assert check["Status"] == "critical"  # a new check starts critical
    assert c.agent.check.ttl_pass("service:billing-1", notes="all good") is True
    _, checks = c.health.checks("billing")
    assert checks[0]["Status"] == "passing" and checks[0]["Output"] == "all good"
    assert c.agent.check.ttl_warn("service:billing-1", notes="slow") is True
    assert c.health.checks("billing")[1][0]["Status"] == "warning"
    r = raw(lab, "PUT", "/v1/agent/check/update/service:billing-1",
            json={"Status": "critical", "Output": "disk full"})
    assert r.status_code == 200
    assert c.health.checks("billing")[1][0]["Output"] == "disk full"
    assert raw(lab, "PUT", "/v1/agent/check/update/service:billing-1",
               json={"Status": "bogus"}).status_code == 400

    filtered = raw(lab, "GET", "/v1/agent/services", params={"filter": 'Port == 8088'}).json()
    assert list(filtered) == ["billing-1"]  # api-docs/agent/service#filtering
    assert c.agent.check.register("cron", check=consul.Check.ttl("1m"), check_id="cron") is True
    assert "cron" in c.agent.checks()
    assert c.agent.check.deregister("cron") is True
    missing = raw(lab, "PUT", "/v1/agent/check/pass/cron")
    assert missing.status_code == 404
    assert missing.text == ('Unknown check ID "cron". Ensure that the check ID is passed, '
                            'not the check name.')
    assert c.agent.service.deregister("billing-1") is True
    assert c.health.service("billing")[1] == []
    gone = raw(lab, "PUT", "/v1/agent/service/deregister/billing-1")
    assert gone.status_code == 404 and gone.text.startswith('Unknown service ID "billing-1"')


def test_health_connect(lab: Lab) -> None:
    """api-docs/health#list-service-instances-for-connect-enabled-service: the sidecar
    proxies of a service, in the shape of health/service."""
    c = client(lab)
    # the demo jobs put api behind a Connect sidecar (world.default_jobs)
    _, entries = c.health.connect("api")
    assert entries, "api has Connect sidecars in the demo lab"
    for e in entries:
        assert e["Service"]["Kind"] == "connect-proxy"
        assert e["Service"]["Proxy"]["DestinationServiceName"] == "api"
        assert {"Node", "Service", "Checks"} <= set(e)
    assert c.health.connect("no-such-service")[1] == []


def test_filter_expressions(lab: Lab) -> None:
    """api-docs/features/filtering: `==`, `!=`, `contains`, `and`/`or`, selectors into maps;
    a bad expression is a 400 with Consul's text."""
    c = client(lab)
    _, all_nodes = c.catalog.nodes()
    first = all_nodes[0]["Node"]
    _, picked = c.catalog.nodes(filter_expr=f'Node == "{first}"')
    assert [n["Node"] for n in picked] == [first]
    _, others = c.catalog.nodes(filter_expr=f'Node != "{first}"')
    assert first not in [n["Node"] for n in others] and len(others) == len(all_nodes) - 1
    _, every = c.health.service("api")
    tag = every[0]["Service"]["Tags"][0]
    entries = raw(lab, "GET", "/v1/health/service/api",
                  params={"filter": f'Service.Tags contains "{tag}"'}).json()
    assert entries and len(entries) == len([e for e in every if tag in e["Service"]["Tags"]])
    assert raw(lab, "GET", "/v1/health/service/api", params={
        "filter": 'Service.Tags contains "no-such-tag"'}).json() == []
    _, both = c.catalog.nodes(filter_expr=f'Node == "{first}" or Node == "nope"')
    assert [n["Node"] for n in both] == [first]
    _, none = c.catalog.nodes(filter_expr=f'Node == "{first}" and Node == "nope"')
    assert none == []
    _, nomatch = c.catalog.nodes(filter_expr='Meta["rack"] == "r9"')
    assert nomatch == []
    _, services = c.catalog.services(filter_expr='ServiceName == "api"')
    assert list(services) == ["api"]
    bad = raw(lab, "GET", "/v1/catalog/nodes", params={"filter": "Node =="})
    assert bad.status_code == 400
    assert bad.text.startswith("Failed to create boolean expression evaluator: ")
    unknown = raw(lab, "GET", "/v1/catalog/nodes", params={"filter": 'Bogus == "x"'})
    assert unknown.status_code == 400 and 'Selector "Bogus" is not valid' in unknown.text


def test_anonymous_sees_filtered_empty_lists(lab: Lab) -> None:
    """api-docs/api-structure#authentication and the ACL docs: a request without a token is
    the anonymous token's; its lists come back empty, flagged by
    X-Consul-Results-Filtered-By-ACLs, not refused."""
    u = urlsplit(lab.urls["consul"])
    for path in ("/v1/catalog/nodes", "/v1/health/service/api", "/v1/session/list",
                 "/v1/health/connect/api"):
        r = requests.get(f"http://{u.hostname}:{u.port}{path}", timeout=5)
        assert r.status_code == 200, path
        assert r.json() == [] and r.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    r = requests.put(f"http://{u.hostname}:{u.port}/v1/session/create", timeout=5)
    assert r.status_code == 403 and "session:write" in r.text


def test_read_only_token_may_not_take_locks(lab: Lab) -> None:
    """The lab's least-privilege Consul token has no key or session rights (acl.py)."""
    c = client(lab, token=lab.secrets.consul_read_token)
    with pytest.raises(consul.ACLPermissionDenied):
        c.session.create()


def test_a_failed_node_invalidates_its_sessions(lab: Lab) -> None:
    """docs/dynamic-app-config/sessions: a session ends when its node's serfHealth check goes
    critical; its locks are released."""
    c = client(lab)
    victim = "vs2"  # a worker; this module's last test, so the others keep it
    sid = c.session.create(name="on-victim", node=victim)
    assert c.kv.put("locks/victim", "x", acquire=sid)
    stop_vm(lab, victim)
    wait_for(lambda: c.session.info(sid)[1] is None)
    assert "Session" not in c.kv.get("locks/victim")[1]


def test_kv_listing_is_filtered_not_refused(lab: Lab) -> None:
    """api-docs/kv#read-key and the ACL rules: a KV listing shows what the token may read
    (an empty root list, or 404 below it, flagged X-Consul-Results-Filtered-By-ACLs); a
    single key it may not read is a 403. Without any keys the root listing is `[]`."""
    ro = lab.secrets.consul_read_token
    root = raw(lab, "GET", "/v1/kv/?keys&separator=/", token=ro)
    assert root.status_code == 200 and root.json() == []
    assert root.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    below = raw(lab, "GET", "/v1/kv/jamlab/?recurse", token=ro)
    assert below.status_code == 404 and below.headers["X-Consul-Results-Filtered-By-ACLs"]
    assert raw(lab, "GET", "/v1/kv/jamlab/domain", token=ro).status_code == 403
    assert raw(lab, "GET", "/v1/kv/jamlab/?keys").json() == ["jamlab/datacenter",
                                                             "jamlab/domain"]


def test_a_ttl_session_ends_unless_renewed(lab: Lab) -> None:
    """api-docs/session#create-session (TTL) and #renew-session: renewal keeps it; without
    one it is invalidated and its locks released. (The lab applies short TTLs set through
    the world, as py-consul refuses TTLs under 10 s.)"""
    c = client(lab)
    sid = c.session.create(name="ttl", ttl=10)
    assert c.session.info(sid)[1]["TTL"] == "10s"
    assert c.session.renew(sid)["ID"] == sid
    assert raw(lab, "PUT", "/v1/session/renew/nope").status_code == 404
    c.kv.put("locks/ttl", "x", acquire=sid)
    lab.call(lambda: setattr(lab.world.sessions[sid], "ttl", "1s"))
    lab.call(renew_session, lab.world, sid)
    wait_for(lambda: c.session.info(sid)[1] is None, timeout=5)
    assert "Session" not in c.kv.get("locks/ttl")[1]


def test_lock_delay_after_a_session_ends(lab: Lab) -> None:
    """docs/dynamic-app-config/sessions (lock-delay) and api-docs/session#create-session
    (LockDelay): after a holder's session ends, its keys cannot be acquired until the delay
    passes; a session with LockDelay 0 leaves none."""
    c = client(lab)
    first = c.session.create(name="holder", lock_delay=1)
    nxt = c.session.create(name="next")
    assert c.kv.put("locks/delay", "a", acquire=first)
    c.session.destroy(first)
    assert c.kv.put("locks/delay", "b", acquire=nxt) is False  # within the lock-delay
    wait_for(lambda: c.kv.put("locks/delay", "b", acquire=nxt), timeout=5)
    quick = c.session.create(name="quick", lock_delay=0)
    assert c.kv.put("locks/quick", "a", acquire=quick)
    c.session.destroy(quick)
    assert c.kv.put("locks/quick", "b", acquire=nxt) is True
