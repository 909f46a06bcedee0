output "ips" {
  description = "Each node's address (name => IP), as the inventory gives it"
  value       = { for name, vm in proxmox_vm_qemu.node : name => local.nodes[name].ansible_host }
}
