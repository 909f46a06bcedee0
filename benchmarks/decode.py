"""What decoding the sources' big bodies costs (issue #17), in ms per body, the way this
checkout's sources decode them.

    .venv/bin/python benchmarks/decode.py --capture CONFIG [--dir /tmp/decode17]
    .venv/bin/python -P benchmarks/decode.py [--dir /tmp/decode17] [--repeat 7]

`--capture` reads the bodies once from a running lab (e.g. `jamtui lab --scale
100,5000,50 --workdir /tmp/lab5k`, CONFIG its jamtui.toml) into DIR: Nomad's
`/v1/allocations`, every Consul `/v1/health/service/:name` and `/v1/health/state/any`, one
Fabio `/api/routes`. Without it, each body is decoded `--repeat` times into what the store
gets, and the best time is printed. For the "before", run this file with
`PYTHONPATH=/tmp/main` (a worktree of main): a checkout without jsonload decodes as main
did (the stdlib's json, then the dict decoders).
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests


def capture(config: Path, out: Path) -> None:
    from jamtui.config import load_config

    cfg = load_config(config)
    assert cfg.nomad is not None and cfg.consul is not None
    (out / "consul").mkdir(parents=True, exist_ok=True)

    def get(url: str, headers: dict[str, str] | None = None) -> bytes:
        resp = requests.get(url, headers=headers or {}, timeout=30)
        resp.raise_for_status()
        return resp.content

    nomad = cfg.nomad.address.rstrip("/")
    (out / "allocations.json").write_bytes(get(f"{nomad}/v1/allocations",
                                               cfg.nomad.auth_headers()))
    consul = cfg.consul.address.rstrip("/")
    token = cfg.consul.token.reveal()
    headers = {"X-Consul-Token": token} if token else {}
    names = json.loads(get(f"{consul}/v1/catalog/services", headers))
    for name in names:
        (out / "consul" / f"{name}.json").write_bytes(
            get(f"{consul}/v1/health/service/{name}", headers))
    (out / "state_any.json").write_bytes(get(f"{consul}/v1/health/state/any", headers))
    if cfg.fabio.addresses:
        (out / "fabio_routes.json").write_bytes(get(f"{cfg.fabio.addresses[0]}/api/routes"))
    print(f"captured into {out}")


def ways() -> tuple[str, dict[str, Callable[[bytes], Any]]]:
    """How this checkout's sources decode each body."""
    from jamtui.sources import consul, fabio, nomad

    if hasattr(nomad, "decode_allocs"):  # this branch: jsonload (msgspec)
        from jamtui.sources import jsonload

        return "msgspec", {
            "nomad /v1/allocations": nomad.decode_allocs,
            "consul /v1/health/service/:name": consul.decode_instances,
            "consul /v1/health/state/any": consul.decode_node_checks,
            "fabio /api/routes": lambda b: fabio.decode_table("f", jsonload.loads(b)),
        }
    return "stdlib", {  # main before: requests' / py-consul's json.loads, then the dicts
        "nomad /v1/allocations": lambda b: [nomad.decode_alloc(a)
                                            for a in json.loads(b.decode())],
        "consul /v1/health/service/:name": lambda b: [consul.decode_instance(e)
                                                      for e in json.loads(b.decode())],
        "consul /v1/health/state/any": lambda b: {
            (c.get("Node", ""), c.get("CheckID", "")): consul.decode_node_check(c)
            for c in json.loads(b.decode())},
        "fabio /api/routes": lambda b: fabio.decode_table("f", json.loads(b)),
    }


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/decode17"))
    parser.add_argument("--capture", type=Path, metavar="CONFIG")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if args.capture:
        capture(args.capture, args.dir)
        return
    label, decoders = ways()
    files = {
        "nomad /v1/allocations": [args.dir / "allocations.json"],
        "consul /v1/health/service/:name": sorted((args.dir / "consul").glob("*.json")),
        "consul /v1/health/state/any": [args.dir / "state_any.json"],
        "fabio /api/routes": [args.dir / "fabio_routes.json"],
    }
    total = 0.0
    for what, paths in files.items():
        bodies = [p.read_bytes() for p in paths if p.exists()]
        if not bodies:
            continue
        decode = decoders[what]
        ms = best(lambda d=decode, bs=bodies: [d(b) for b in bs], args.repeat)  # type: ignore[misc]
        total += ms
        size = sum(map(len, bodies)) / 1e6
        each = f" ({ms / len(bodies):.2f} ms each)" if len(bodies) > 1 else ""
        print(f"{label}: {what:34s} x{len(bodies):<3d} {size:5.2f} MB {ms:7.1f} ms{each}")
    print(f"{label}: all {total:.1f} ms")


if __name__ == "__main__":
    main()
