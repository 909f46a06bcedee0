"""Big labs on demand: `jamtui lab --scale CLIENTS,ALLOCS,SERVICES`.

The inventory gets CLIENTS Nomad clients (the `vs` group, spread over enough hypervisors),
and the lab runs the two system jobs per client (fabio, node-exporter) plus SERVICES service
jobs that together bring the allocations up to ALLOCS. Each service job registers one Consul
service with its own `urlprefix-` route, so Fabio's table grows with it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from ruamel.yaml import YAML

from ..inventory import Inventory, load_inventory
from .model import GroupSpec, Job, ServiceSpec, TaskSpec
from .world import default_jobs

CLIENTS_PER_HYPERVISOR = 25


class ScaleError(ValueError):
    """A --scale that cannot be built, in words."""


def parse_scale(spec: str) -> tuple[int, int, int]:
    """`100,5000,50` -> (clients, allocations, services)."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ScaleError(f"--scale takes CLIENTS,ALLOCS,SERVICES (three whole numbers), "
                         f"got {spec!r}")
    clients, allocs, services = (int(p) for p in parts)
    if not 1 <= clients <= 1000:
        raise ScaleError(f"--scale: CLIENTS must be 1..1000, got {clients}")
    if services < 1:
        raise ScaleError("--scale: SERVICES must be at least 1")
    floor = 2 * clients + services  # two system jobs per client, one allocation per service
    if allocs < floor:
        raise ScaleError(f"--scale: {clients} clients run {2 * clients} system allocations and "
                         f"{services} services need one each: ALLOCS must be at least {floor}")
    if allocs > 50000:
        raise ScaleError(f"--scale: ALLOCS must be at most 50000, got {allocs}")
    return clients, allocs, services


def scale_inventory(clients: int, path: Path) -> Inventory:
    """Write (and load) an inventory with `clients` Nomad clients at `path`."""
    hypervisors = 2 + (clients - 1) // CLIENTS_PER_HYPERVISOR
    net = ipaddress.ip_network("10.42.0.0/16")
    hosts = list(net.hosts())

    def addr(i: int) -> str:
        return str(hosts[i])

    hv = {f"pve{i + 1}": {"ansible_host": addr(10 + i), "cores": 64, "memory": 262144}
          for i in range(hypervisors)}
    pves = list(hv)
    vb = {f"vb{i}": {"ansible_host": addr(20 + i), "vmid": 200 + i, "cores": 2,
                     "memory": 4096, "disk": 32, "hypervisor": pves[i % len(pves)]}
          for i in range(3)}
    vs = {f"vs{i}": {"ansible_host": addr(256 + i), "vmid": 1000 + i, "cores": 4,
                     "memory": 8192, "disk": 64, "hypervisor": pves[i % len(pves)]}
          for i in range(clients)}
    doc = {"all": {
        "vars": {"lab_domain": "jamfox.dev", "lab_subnet": str(net),
                 "lab_gateway": addr(0), "lab_datacenter": "jamlab"},
        "children": {
            "hypervisors": {"hosts": hv},
            "dns": {"hosts": {"pi": {"ansible_host": addr(2)}}},
            "bastion": {"hosts": {"bastion": {
                "ansible_host": addr(5), "vmid": 100, "cores": 2, "memory": 2048, "disk": 16,
                "hypervisor": "pve1"}}},
            "vb": {"hosts": vb},
            "vs": {"hosts": vs},
        },
    }}
    yaml = YAML()
    with path.open("w") as f:
        yaml.dump(doc, f)
    return load_inventory(path)


def scale_jobs(clients: int, allocs: int, services: int) -> list[Job]:
    """The system jobs of the demo plus `services` service jobs with the remaining
    allocations spread evenly over them."""
    jobs = [j for j in default_jobs() if j.type == "system"]
    rest = allocs - 2 * clients
    for i in range(services):
        count = rest // services + (1 if i < rest % services else 0)
        name = f"svc{i:03d}"
        jobs.append(Job(id=name, type="service", groups=[GroupSpec(
            name="web", count=count, ports=["http"],
            tasks=[TaskSpec("server", config={"image": "nginx:1.27"}, cpu=10, memory=16)],
            services=[ServiceSpec(name, "http", tags=[f"urlprefix-{name}.jamfox.dev/"])],
        )]))
    return jobs
