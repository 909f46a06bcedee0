"""The Ansible inventory, the single source of truth for which nodes exist: read (YAML or
INI), and edited round-trip (comments and order kept) under a lock, atomically.

A small package: `parse` (read), `edit` (round-trip text edits), `propose` (a new node),
`validate` (check a node and the inventory), `lock` (write under a lock). Every name is
importable from `jamtui.inventory` as before the split."""

from .edit import (  # noqa: F401
    _ini_add,
    _ini_host_line,
    _ini_remove,
    _yaml,
    _yaml_add,
    _yaml_edit,
    _yaml_remove,
)
from .lock import (  # noqa: F401
    InventoryLocked,
    NodeInvalid,
    _Changed,
    _locked,
    _replace,
    _write_new,
    add_node,
    add_proposed,
    edit_inventory,
    remove_node,
    restore_inventory,
)
from .parse import (  # noqa: F401
    _SECTION,
    NODE_GROUPS,
    Host,
    Inventory,
    InventoryError,
    _ini_pairs,
    _ini_split,
    _ini_value,
    _ip,
    _line_of,
    _walk_group,
    default_inventory_path,
    host_ip,
    is_ini,
    load_inventory,
    parse_ini,
    parse_inventory,
    read_text,
)
from .propose import (  # noqa: F401
    _LABEL,
    HOST_VARS,
    NodeSpec,
    hypervisor_free,
    propose_node,
    subnet_of,
)
from .validate import (  # noqa: F401
    _SIZES,
    _whole,
    check_inventory,
    inventory_problems,
    is_host_name,
    named_hosts,
    resolve_names,
    validate_node,
)
