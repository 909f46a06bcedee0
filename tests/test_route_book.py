"""The route book: every host seen this session stays listed, broken where it was lost, with
since when; only a gone host can be removed; DNS answers are cached and refreshed slowly."""

from __future__ import annotations

from jamtui.model import Kind
from jamtui.route_book import RouteBook
from jamtui.routing import Resolution
from jamtui.store import Store
from tests.test_routing import ALLOC, BASTION, lab_store

HOST = "example.jamfox.dev/"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def started(store: Store) -> tuple[RouteBook, Clock]:
    clock = Clock()
    book = RouteBook(store, clock)
    book.start()
    return book, clock


def stop_the_job(store: Store) -> None:
    """What Nomad, Consul and Fabio do when `example` is stopped: the allocation stops, the
    service (with its urlprefix- tag) is deregistered, Fabio drops the route."""
    with store.batch():
        for route in store.items(Kind.ROUTE):
            store.remove(Kind.ROUTE, route.id)
        for inst in store.items(Kind.INSTANCE):
            store.remove(Kind.INSTANCE, inst.id)
        store.remove(Kind.SERVICE, "example")
        store.remove(Kind.ALLOCATION, ALLOC)


def test_a_stopped_jobs_host_stays_listed_broken_at_its_route_since_it_went() -> None:
    store = lab_store()
    book, clock = started(store)
    (row,) = book.rows()
    assert row.chain.whole and row.since == 1000.0 and not row.gone
    clock.now = 1100.0
    stop_the_job(store)
    clock.now = 1160.0
    (row,) = book.rows()
    assert row.id == HOST and row.gone and row.gone_since == 1100.0
    assert not row.chain.whole and row.chain.broken is not None
    assert row.chain.broken.layer == "route"
    assert "gone since" in row.chain.broken.problem and "example" in row.chain.broken.problem
    assert row.since == 1100.0  # when it went, not when the view looked
    service = next(h for h in row.chain.hops if h.layer == "service")
    assert not service.ok and "no instances" in service.detail  # the service it led to


def test_failing_instances_keep_the_tagged_host_broken_at_the_route() -> None:
    store = lab_store()
    book, clock = started(store)
    book.rows()
    clock.now = 1050.0
    store.remove(Kind.ROUTE, store.items(Kind.ROUTE)[0].id)  # no passing instance: no route
    clock.now = 1070.0
    (row,) = book.rows()
    assert not row.gone and row.chain.broken is not None
    assert row.chain.broken.layer == "route" and row.since == 1050.0  # when Fabio dropped it


def test_only_a_gone_host_can_be_removed_and_it_comes_back_when_named_again() -> None:
    store = lab_store()
    book, _clock = started(store)
    removed, message = book.remove(HOST)
    assert not removed and "still named" in message
    route = store.items(Kind.ROUTE)[0]
    service = store.get(Kind.SERVICE, "example")
    stop_the_job(store)
    removed, message = book.remove(HOST)
    assert removed and "nothing changed in the lab" in message
    assert book.rows() == []
    store.upsert(Kind.SERVICE, service)
    store.upsert(Kind.ROUTE, route)
    assert [r.id for r in book.rows()] == [HOST]


def test_a_host_seen_before_the_view_first_looks_is_listed() -> None:
    """The book follows the store from the engine's start: a host routed then stopped
    before `:routes` was ever opened is still there."""
    store = lab_store()
    book, clock = started(store)
    clock.now = 1200.0
    stop_the_job(store)
    (row,) = book.rows()
    assert row.gone and row.since == 1200.0 and row.first_seen == 1000.0


def test_dns_answers_join_the_chain_and_are_refreshed_slowly() -> None:
    store = lab_store()
    book, clock = started(store)
    assert book.dns_due() == ["example.jamfox.dev"]
    book.expect = BASTION
    book.set_dns("example.jamfox.dev", Resolution("internal DNS 127.0.0.1:53", ("10.9.9.9",)))
    (row,) = book.rows()
    assert row.chain.hops[0].layer == "dns" and row.chain.broken is row.chain.hops[0]
    assert book.dns_due(60) == []
    clock.now += 61
    assert book.dns_due(60) == ["example.jamfox.dev"]


def test_haproxy_losing_every_fabio_is_dated_from_its_poll_not_from_the_look() -> None:
    from jamtui.model import HAProxyRow

    store = lab_store()
    book, clock = started(store)
    clock.now = 1100.0
    with store.batch():
        for n in ("vs0", "vs1"):
            store.upsert(Kind.HAPROXY, HAProxyRow("fabio", f"fabio_{n}", "server", "DOWN",
                                                  check_status="L4CON"))
    clock.now = 1160.0
    (row,) = book.rows()  # the view opens a minute later
    assert row.chain.broken is not None and row.chain.broken.layer == "backend"
    assert row.since == 1100.0
    clock.now = 1200.0
    store.upsert(Kind.HAPROXY, HAProxyRow("fabio", "fabio_vs0", "server", "UP",
                                          check_status="L7OK"))
    clock.now = 1230.0
    (row,) = book.rows()
    assert row.chain.whole and row.since == 1200.0


def _picture(store: Store, carriers: dict[str, tuple[str, ...]], read: tuple[str, ...],
             unread: tuple[str, ...]) -> None:
    """What the Fabio source publishes: each distinct route once, with its carriers."""
    from jamtui.model import Route

    store.replace(Kind.ROUTE, [
        Route("", "example", "example.jamfox.dev", "/", dst, 1.0, fabios=fabios, read=read,
              unread=unread) for dst, fabios in carriers.items()])


def test_unread_fabios_are_said_so_and_counted_once_read() -> None:
    """The book follows the source's pictures: one instance read (the others "not read
    yet", never lacking the route), then all three, one of which routes elsewhere."""
    store = lab_store()
    book, _ = started(store)
    dst = "http://10.42.0.31:23456/"
    _picture(store, {dst: ("vs0:9998",)}, ("vs0:9998",), ("vs1:9998", "vs2:9998"))
    (row,) = book.rows()
    route = next(h for h in row.chain.hops if h.layer == "route")
    assert row.chain.whole and "routes as read from vs0:9998" in route.detail
    assert "2 Fabio instances not read yet" in route.detail
    assert [c.ok for c in route.children] == [True, True]  # carriers, then the unread
    _picture(store, {dst: ("vs0:9998", "vs1:9998")},
             ("vs0:9998", "vs1:9998", "vs2:9998"), ())
    (row,) = book.rows()
    route = next(h for h in row.chain.hops if h.layer == "route")
    assert "route on 2/3 Fabios" in route.detail and "not read" not in route.detail
    lacking = next(c for c in route.children if not c.ok)
    assert lacking.name == "vs2:9998" and "no route on 1/3" in lacking.detail
