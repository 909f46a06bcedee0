"""The lab's ACL tokens and what each may do, as Nomad, Consul and Proxmox VE enforce them.

Every backend has a management token (all rights, what the lab always had) and a read-only
token with a dashboard's least privilege, so that jamtui is tried against what a locked-down
cluster answers. The policies are what the README's "ACL policies" section tells operators to
create; the answers follow each server's own code:

- Nomad: an unknown secret is 403 `ACL token not found`; a missing capability is 403
  `Permission denied` (nomad/structs.ErrPermissionDenied); `/v1/status/*` needs no token.
- Consul: an unknown secret is 403 `ACL not found`; list endpoints filter their results to
  what the token may read and say so in `X-Consul-Results-Filtered-By-ACLs: true`; other
  endpoints refuse with 403 `Permission denied: token with AccessorID '…' lacks permission
  'operator:read'` (acl.PermissionDeniedError).
- Proxmox: a privilege missing on a path is 403 `Permission check failed (/vms/100,
  VM.PowerMgmt)`, with that text as the reason phrase and in the body's message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# -- Nomad -----------------------------------------------------------------------------------

# A read-only dashboard: nodes and jobs, their allocations and logs; no operator, no agent,
# no CSI volumes (namespace "read" would grant them; these capabilities do not).
NOMAD_READ_ONLY = frozenset({
    "node:read", "namespace:list-jobs", "namespace:read-job", "namespace:read-logs",
})

# (method or "*", path pattern, capability); first match wins; None = no ACL needed
_NOMAD_RULES: tuple[tuple[str, str, str | None], ...] = (
    ("*", r"/v1/status/.*", None),
    ("*", r"/v1/regions", None),
    ("GET", r"/v1/jobs", "namespace:list-jobs"),
    ("GET", r"/v1/namespaces?(/.*)?", "namespace:list-jobs"),  # any namespace capability
    ("*", r"/v1/jobs/parse", "namespace:parse-job"),
    ("*", r"/v1/validate/job", "namespace:read-job"),
    ("*", r"/v1/job/[^/]+/plan", "namespace:submit-job"),
    ("GET", r"/v1/deployments?(/.*)?", "namespace:read-job"),
    ("*", r"/v1/deployment/(promote|fail|pause)/[^/]+", "namespace:submit-job"),
    ("GET", r"/v1/evaluations", "namespace:read-job"),
    ("GET", r"/v1/client/allocation/[^/]+/stats", "namespace:read-job"),
    ("GET", r"/v1/client/stats", "node:read"),
    ("*", r"/v1/jobs", "namespace:submit-job"),
    ("*", r"/v1/job/[^/]+/scale", "namespace:scale-job"),
    ("GET", r"/v1/job/.*", "namespace:read-job"),
    ("*", r"/v1/job/.*", "namespace:submit-job"),
    ("GET", r"/v1/allocations?(/.*)?", "namespace:read-job"),
    ("*", r"/v1/allocation/[^/]+/stop", "namespace:alloc-lifecycle"),
    ("*", r"/v1/client/allocation/[^/]+/restart", "namespace:alloc-lifecycle"),
    ("GET", r"/v1/client/allocation/[^/]+/exec", "namespace:alloc-exec"),
    ("GET", r"/v1/client/fs/(ls|stat)/.*", "namespace:read-fs"),
    ("GET", r"/v1/client/fs/logs/.*", "namespace:read-logs"),
    ("GET", r"/v1/nodes|/v1/node/.*", "node:read"),
    ("*", r"/v1/node/.*", "node:write"),
    ("GET", r"/v1/evaluation/.*", "namespace:read-job"),
    ("GET", r"/v1/volumes", "namespace:csi-list-volume"),
    ("GET", r"/v1/operator/.*", "operator:read"),
    ("GET", r"/v1/agent/members", "node:read"),
    ("GET", r"/v1/agent/.*", "agent:read"),
)

# what each event-stream topic needs (nomad/stream: a token without it is refused)
NOMAD_TOPIC_CAPABILITY = {"Node": "node:read", "Job": "namespace:read-job",
                          "Allocation": "namespace:read-job",
                          "Evaluation": "namespace:read-job",
                          "Deployment": "namespace:read-job"}
# (the Job, Allocation, Evaluation and Deployment topics follow the `namespace` parameter)


# checked by the handler after the WebSocket upgrade (its token may come in the first frame,
# `ws_handshake`), and refused with a close frame as Nomad does, not an HTTP 403
NOMAD_IN_BAND = re.compile(r"/v1/client/allocation/[^/]+/exec")


def nomad_capability(method: str, path: str) -> str | None:
    """The capability a Nomad request needs (None: none); an unlisted path needs management."""
    for want, pattern, capability in _NOMAD_RULES:
        if (want == "*" or want == method) and re.fullmatch(pattern, path):
            return capability
    return "management"


# -- Consul ----------------------------------------------------------------------------------

# service_prefix "" { policy = "read" intentions = "deny" } and node_prefix "" read
CONSUL_READ_ONLY = frozenset({"service:read", "node:read"})

# (method, path pattern, capability, filtered): a filtered list answers `empty` when refused
_CONSUL_RULES: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("*", r"/v1/status/.*", None, None),
    ("GET", r"/v1/catalog/services", "service:read", "{}"),
    ("GET", r"/v1/catalog/service/.*", "service:read", "[]"),
    ("GET", r"/v1/health/service/.*", "service:read", "[]"),
    ("GET", r"/v1/health/(state|checks|node)/.*", "service:read", "[]"),
    ("GET", r"/v1/catalog/nodes?(/.*)?", "node:read", "[]"),
    ("GET", r"/v1/health/connect/.*", "service:read", "[]"),
    ("GET", r"/v1/agent/(services|checks)", "service:read", "{}"),
    ("*", r"/v1/agent/(service|check)/.*", "service:write", None),
    ("GET", r"/v1/session/.*", "session:read", "[]"),
    ("*", r"/v1/session/.*", "session:write", None),
    ("*", r"/v1/txn", "key:write", None),
    ("GET", r"/v1/agent/members", "node:read", "[]"),
    ("GET", r"/v1/connect/intentions", "intentions:read", "[]"),
    ("GET", r"/v1/connect/intentions/.*", "intentions:read", None),
    ("*", r"/v1/connect/intentions/.*", "intentions:write", None),
    ("GET", r"/v1/operator/.*", "operator:read", None),
    ("*", r"/v1/operator/.*", "operator:write", None),
    ("*", r"/v1/agent/force-leave/.*", "operator:write", None),
    ("*", r"/v1/agent/maintenance", "node:write", None),
    ("*", r"/v1/agent/leave", "agent:write", None),
    ("GET", r"/v1/agent/.*", "agent:read", None),
    ("GET", r"/v1/kv/.*", "key:read", None),
    ("*", r"/v1/kv/.*", "key:write", None),
)


def consul_rule(method: str, path: str) -> tuple[str | None, str | None]:
    """(capability needed, the empty answer of a filtered list or None) for a request."""
    for want, pattern, capability, empty in _CONSUL_RULES:
        if (want == "*" or want == method) and re.fullmatch(pattern, path):
            return capability, empty
    return "acl:write", None


# -- Proxmox ---------------------------------------------------------------------------------

# PVEAuditor on / (pve-access-control's built-in role, PVE 8)
PVE_AUDITOR = frozenset({"Datastore.Audit", "Mapping.Audit", "Pool.Audit", "SDN.Audit",
                         "Sys.Audit", "VM.Audit"})
PVE_ALL = PVE_AUDITOR | frozenset({
    "Datastore.Allocate", "Datastore.AllocateSpace", "Sys.Modify", "Sys.PowerMgmt",
    "VM.Allocate", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Cloudinit",
    "VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network",
    "VM.Config.Options", "VM.Console", "VM.Migrate", "VM.Monitor", "VM.PowerMgmt",
    "VM.Snapshot",
})


def pve_privilege(method: str, path: str) -> tuple[str, str] | None:
    """(ACL path, privilege) a Proxmox call needs, as the PVE API viewer's "Permissions" lists
    them; None for what any authenticated user may call (lists are filtered instead, and the
    handler filters them: /cluster/resources, /cluster/tasks, /storage, /pools)."""
    m = re.fullmatch(r"/nodes/[^/]+/(qemu|lxc)/(\d+)(/.*)?", path)
    if m:
        acl, rest = f"/vms/{m.group(2)}", m.group(3) or ""
        if rest.startswith("/status/") and method == "POST":
            return acl, "VM.PowerMgmt"
        if rest.startswith("/snapshot") and method != "GET":
            return acl, "VM.Snapshot"  # rollback: VM.Snapshot or VM.Snapshot.Rollback
        if rest == "/migrate":
            return acl, "VM.Migrate"  # the GET precondition check needs it too
        if rest == "/clone":
            return acl, "VM.Clone"
        if rest == "/config" and method != "GET":
            return acl, "VM.Config.Options"
        if rest == "/template" or (rest == "" and method == "DELETE"):
            return acl, "VM.Allocate"
        if rest.startswith("/agent/"):
            return acl, "VM.Monitor"
        return acl, "VM.Audit"
    if re.fullmatch(r"/nodes/[^/]+/(qemu|lxc)", path) and method == "POST":
        return "/vms", "VM.Allocate"
    m = re.fullmatch(r"/nodes/([^/]+)/(status|network)", path)
    if m:
        return f"/nodes/{m.group(1)}", "Sys.Audit"
    m = re.fullmatch(r"/nodes/[^/]+/storage/([^/]+)(/.*)?", path)
    if m:
        return f"/storage/{m.group(1)}", "Datastore.Audit"
    m = re.fullmatch(r"/pools/([^/]+)", path)
    if m:
        return f"/pool/{m.group(1)}", "Pool.Audit"
    return None


# -- every token the lab accepts ---------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """What one token may do: `*` in `capabilities` is a management token."""

    name: str
    capabilities: frozenset[str]
    accessor: str = ""

    def allows(self, capability: str | None) -> bool:
        if capability is None or "*" in self.capabilities:
            return True
        if capability in self.capabilities:
            return True
        # a write policy grants read (Nomad node/agent/operator, Consul service/node/...)
        head, _, level = capability.rpartition(":")
        return level == "read" and f"{head}:write" in self.capabilities


MANAGEMENT = frozenset({"*"})
