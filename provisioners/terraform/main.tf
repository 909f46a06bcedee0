# One VM per `vb` and `vs` host of the Ansible inventory: the hosts, their VMIDs, sizes and
# hypervisors are read from it, never typed twice. jamtui targets a single node with
# -target='proxmox_vm_qemu.node["<name>"]'.

locals {
  inventory = yamldecode(file("${path.module}/../ansible/inventory.yml"))
  lab       = local.inventory.all.vars
  groups    = local.inventory.all.children

  nodes = merge(
    { for name, host in try(local.groups.vb.hosts, {}) : name => merge(host, { group = "vb" }) },
    { for name, host in try(local.groups.vs.hosts, {}) : name => merge(host, { group = "vs" }) },
  )

  prefix_len = split("/", local.lab.lab_subnet)[1]
  gateway    = coalesce(var.gateway, local.lab.lab_gateway)
  # the internal DNS (the `dns` group), else the gateway
  nameserver = try(values(local.groups.dns.hosts)[0].ansible_host, local.gateway)
}

resource "proxmox_vm_qemu" "node" {
  for_each = local.nodes

  name        = each.key
  description = "JamLab ${each.value.group} node, managed by Terraform from the Ansible inventory"
  target_node = each.value.hypervisor
  vmid        = each.value.vmid
  clone       = var.template_name
  full_clone  = true
  agent       = 1
  memory      = each.value.memory
  scsihw      = "virtio-scsi-single"
  tags        = each.value.group

  start_at_node_boot = true

  cpu {
    cores   = each.value.cores
    sockets = 1
  }

  disks {
    scsi {
      scsi0 {
        disk {
          size    = "${each.value.disk}G"
          storage = var.storage
        }
      }
    }
    ide {
      ide2 {
        cloudinit {
          storage = var.storage
        }
      }
    }
  }

  network {
    id     = 0
    model  = "virtio"
    bridge = var.bridge
  }

  os_type    = "cloud-init"
  ipconfig0  = "ip=${each.value.ansible_host}/${local.prefix_len},gw=${local.gateway}"
  nameserver = local.nameserver
  sshkeys    = var.ssh_public_keys
  cipassword = var.cloudinit_password
  skip_ipv6  = true
}
