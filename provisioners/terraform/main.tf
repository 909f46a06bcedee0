locals {
  inventory = yamldecode(file("${path.module}/${var.inventory_file}"))
  vars      = local.inventory.all.vars
  groups    = local.inventory.all.children
  # every vb and vs host of the inventory, with its variables
  nodes = merge(
    { for name, h in try(local.groups.vb.hosts, {}) : name => merge(h, { group = "vb" }) },
    { for name, h in try(local.groups.vs.hosts, {}) : name => merge(h, { group = "vs" }) },
  )
  prefix_len = split("/", local.vars.lab_subnet)[1]
}

resource "proxmox_vm_qemu" "node" {
  for_each = local.nodes

  name        = each.key
  vmid        = each.value.vmid
  target_node = each.value.hypervisor
  clone       = var.template_name
  full_clone  = true
  agent       = 1
  os_type     = "cloud-init"
  cores       = each.value.cores
  memory      = each.value.memory
  tags        = each.value.group
  scsihw      = "virtio-scsi-single"

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

  ipconfig0  = "ip=${each.value.ansible_host}/${local.prefix_len},gw=${local.vars.lab_gateway}"
  nameserver = try(values(local.groups.dns.hosts)[0].ansible_host, local.vars.lab_gateway)
  sshkeys    = var.ssh_public_keys
  cipassword = var.cloudinit_password
}
