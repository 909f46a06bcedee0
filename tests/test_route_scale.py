"""`:routes` at 100 Fabios: the route book's cost follows hosts and changes, not Fabio
instances times routes, and identical routes across Fabios are one hop (those that lack a route
named, broken). Pure: a store filled as a big lab's sources would fill it."""

from __future__ import annotations

import dataclasses
import threading
import time
import types
from typing import Any

from jamtui.model import (
    VM,
    Allocation,
    CheckInfo,
    HAProxyRow,
    Hypervisor,
    Kind,
    NomadNode,
    Route,
    Service,
    ServiceInstance,
)
from jamtui.route_book import RouteBook
from jamtui.routing import Hop, all_chains
from jamtui.store import Store

HOSTS = 12


def fabio(i: int) -> str:
    return f"fabio-{i:03d}:9999"


def alloc_id(h: int) -> str:
    return f"{h:08x}-0000-0000-0000-000000000000"


def big_store(fabios: int, hosts: int = HOSTS) -> Store:
    """`hosts` services, each with one instance on its allocation, node, VM and hypervisor,
    every one routed by each of `fabios` Fabio instances (the same targets and weights)."""
    s = Store()
    with s.batch():
        s.upsert(Kind.HAPROXY, HAProxyRow("www", "FRONTEND", "frontend", "OPEN"))
        s.upsert(Kind.HAPROXY, HAProxyRow("fabio", "BACKEND", "backend", "UP"))
        for f in range(fabios):  # a server per Fabio, as the lab's HAProxy has
            s.upsert(Kind.HAPROXY, HAProxyRow("fabio", f"fabio_vs{f}", "server", "UP"))
        s.upsert(Kind.HYPERVISOR, Hypervisor("pve1", "online", 0.1, 8, 1, 2))
        for h in range(hosts):
            name, node = f"svc{h:02d}", f"vs{h:02d}"
            s.upsert(Kind.SERVICE, Service(name, (f"urlprefix-{name}.jamfox.dev/",), 1))
            s.upsert(Kind.INSTANCE, ServiceInstance(
                f"{node}/_nomad-task-{h}", name, f"_nomad-task-{h}", node, f"10.0.1.{h}", 2000,
                checks=(CheckInfo("http", "service check", "passing"),), alloc_id=alloc_id(h)))
            s.upsert(Kind.ALLOCATION, Allocation(alloc_id(h), f"{name}.web[0]", name, "web",
                                                 f"n{h}", node, "running", "run"))
            s.upsert(Kind.NOMAD_NODE, NomadNode(f"n{h}", node, f"10.0.1.{h}", "ready",
                                                "eligible", False))
            s.upsert(Kind.VM, VM(300 + h, node, "pve1", "running", 0.1, 4, 1, 2,
                                 ip=f"10.0.1.{h}"))
            for f in range(fabios):
                s.upsert(Kind.ROUTE, Route(fabio(f), name, f"{name}.jamfox.dev", "/",
                                           f"http://10.0.1.{h}:2000/", 1.0))
    return s


def started(store: Store) -> RouteBook:
    book = RouteBook(store)
    book.start()
    return book


def route_hop(book: RouteBook, cid: str) -> Hop:
    row = next(r for r in book.rows() if r.id == cid)
    return next(h for h in row.chain.hops if h.layer == "route")


def nodes(hop: Hop) -> int:
    return 1 + sum(nodes(c) for c in hop.children)


def stop_alloc(store: Store, h: int) -> None:
    alloc = store.get(Kind.ALLOCATION, alloc_id(h))
    store.upsert(Kind.ALLOCATION, dataclasses.replace(alloc, client_status="complete",
                                                      desired_status="stop"))


def stop_job(store: Store, h: int, fabios: int) -> None:
    """What the sources write when a job stops: every Fabio drops its route, Consul its
    service and instance, Nomad stops the allocation."""
    name = f"svc{h:02d}"
    with store.batch():
        for f in range(fabios):
            store.remove(Kind.ROUTE, f"{fabio(f)}|{name}.jamfox.dev/|http://10.0.1.{h}:2000/")
        store.remove(Kind.INSTANCE, f"vs{h:02d}/_nomad-task-{h}")
        store.remove(Kind.SERVICE, name)
    stop_alloc(store, h)


def changes_cost(fabios: int) -> tuple[int, int, int, int]:
    """(chains traced to open, per allocation stop, per job stop, the route hop's tree
    nodes) at `fabios` Fabio instances."""
    store = big_store(fabios)
    book = started(store)
    assert len(book.rows()) == HOSTS
    opened = book.evaluated
    hop = route_hop(book, "svc03.jamfox.dev/")
    before = book.evaluated
    stop_alloc(store, 3)
    row = next(r for r in book.rows() if r.id == "svc03.jamfox.dev/")
    assert row.chain.broken is not None and row.chain.broken.layer == "service"
    per_alloc = book.evaluated - before
    before = book.evaluated
    stop_job(store, 5, fabios)
    row = next(r for r in book.rows() if r.id == "svc05.jamfox.dev/")
    assert row.gone and row.chain.broken is not None and row.chain.broken.layer == "route"
    per_job = book.evaluated - before
    assert not book.dirty() and book.rows() and book.evaluated == before + per_job  # idle
    return opened, per_alloc, per_job, nodes(hop)


def test_chains_traced_per_change_and_the_tree_do_not_grow_with_the_fabio_count() -> None:
    one = changes_cost(1)
    hundred = changes_cost(100)
    assert one == hundred, (one, hundred)
    opened, per_alloc, per_job, tree = hundred
    assert opened == HOSTS and per_alloc == 1 and per_job == 1
    assert tree == 2  # the route and one "route on 100/100 Fabios" child, not 100 children


def test_identical_routes_on_100_fabios_are_one_hop_that_counts_them() -> None:
    book = started(big_store(100, hosts=2))
    hop = route_hop(book, "svc01.jamfox.dev/")
    assert hop.ok and "100/100 Fabios" in hop.detail
    (agree,) = hop.children
    assert agree.ok and "route on 100/100 Fabios" in agree.detail
    assert "http://10.0.1.1:2000/" in agree.detail


def test_a_fabio_missing_a_route_is_a_broken_hop_that_names_it() -> None:
    store = big_store(100, hosts=2)
    book = started(store)
    book.rows()
    before = book.evaluated
    for f in (7, 42):
        store.remove(Kind.ROUTE, f"{fabio(f)}|svc01.jamfox.dev/|http://10.0.1.1:2000/")
    hop = route_hop(book, "svc01.jamfox.dev/")
    assert book.evaluated - before == 1  # svc01's chain only, once for both removals
    agree, lacking = hop.children
    assert agree.ok and "route on 98/100 Fabios" in agree.detail
    assert not lacking.ok and "no route on 2/100 Fabios" in lacking.detail
    assert fabio(7) in lacking.name and fabio(42) in lacking.name
    assert fabio(7) in lacking.problem and fabio(42) in lacking.problem
    assert hop.ok  # 98 Fabios still route it: the chain is whole, the lacking hop says who
    # a Fabio routing it elsewhere is its own hop, expanded
    store.upsert(Kind.ROUTE, Route(fabio(9), "svc01", "svc01.jamfox.dev", "/",
                                   "http://10.0.1.1:2000/", 0.5))
    store.remove(Kind.ROUTE, f"{fabio(9)}|svc01.jamfox.dev/|http://10.0.1.1:2000/")
    store.upsert(Kind.ROUTE, Route(fabio(9), "svc01", "svc01.jamfox.dev", "/",
                                   "http://10.0.9.9:2000/", 0.5))
    hop = route_hop(book, "svc01.jamfox.dev/")
    details = [c.detail for c in hop.children]
    assert any("97/100 Fabios" in d for d in details)
    odd = next(c for c in hop.children if "10.0.9.9" in c.detail)
    assert odd.ok and odd.name == fabio(9)
    # every route in the store (the headless `snapshot`/`trace` path) agrees
    chain = next(c for c in all_chains(store) if c.id == "svc01.jamfox.dev/")
    route = next(h for h in chain.hops if h.layer == "route")
    assert [c.detail for c in route.children] == details


def test_haproxy_servers_up_are_one_hop_and_those_down_are_named() -> None:
    store = big_store(100, hosts=1)
    store.upsert(Kind.HAPROXY, HAProxyRow("fabio", "fabio_vs7", "server", "DOWN",
                                          check_status="L4CON"))
    book = started(store)
    (row,) = book.rows()
    backend = next(h for h in row.chain.hops if h.layer == "backend")
    assert backend.ok and backend.detail.startswith("99/100 servers up")
    up, down = backend.children
    assert up.ok and up.detail == "99/100 servers up" and "and 93 more" in up.name
    assert not down.ok and down.name == "fabio_vs7" and "DOWN" in down.problem


def test_noting_a_route_change_costs_the_change_not_the_store() -> None:
    store = big_store(100, hosts=20)
    book = started(store)
    book.rows()
    reads = 0
    items = store.items

    def counting(kind: Kind) -> list[Any]:
        nonlocal reads
        reads += kind is Kind.ROUTE
        return items(kind)

    store.items = counting  # type: ignore[method-assign]
    store.remove(Kind.ROUTE, f"{fabio(3)}|svc04.jamfox.dev/|http://10.0.1.4:2000/")
    book.rows()
    assert reads == 0  # no pass over the 2,000 routes, for the note nor the chains


async def test_routes_screen_evaluates_off_the_loop_and_keeps_the_cursor() -> None:
    from textual.widgets import DataTable, Static

    from jamtui.ui.app import JamApp
    from tests.ui.test_cockpit import text_of, until

    store = big_store(100)
    book = started(store)
    threads: list[str] = []
    rows = book.rows

    def recorded() -> Any:
        threads.append(threading.current_thread().name)
        return rows()

    book.rows = recorded  # type: ignore[method-assign]
    engine: Any = types.SimpleNamespace(store=store, routes=book, sources=dict.fromkeys(
        ("consul", "nomad", "proxmox", "fabio", "haproxy")), start=lambda: None,
        stop=lambda: None)
    app = JamApp(engine, start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("colon", *"routes", "enter")
        await until(pilot, lambda: app.screen.name == "routes")
        screen: Any = app.screen
        await until(pilot, lambda: len(screen.rows) == HOSTS)
        assert threads and threading.main_thread().name not in threads
        table = screen.query_one("#chains", DataTable)
        table.move_cursor(row=table.get_row_index("svc07.jamfox.dev/"))
        tree = await until(pilot, lambda: "svc07" in text_of(
            screen.query_one("#chain", Static).content) and text_of(
            screen.query_one("#chain", Static).content))
        assert "route on 100/100 Fabios" in tree and tree.count("fabio-") == 0
        assert len(tree.splitlines()) < 20
        t0 = time.monotonic()
        stop_job(store, 7, 100)
        await until(pilot, lambda: screen.rows["svc07.jamfox.dev/"].gone)
        assert time.monotonic() - t0 < 8
        assert screen.selected_id() == "svc07.jamfox.dev/"  # the cursor stayed on its host
        cells = [text_of(c) for c in table.get_row("svc07.jamfox.dev/")]
        assert any("✗ gone" in c for c in cells)
