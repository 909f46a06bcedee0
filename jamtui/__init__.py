"""jamtui: the terminal cockpit for a Proxmox + Consul + Nomad homelab."""

__version__ = "0.1.0"
