# A cloud-init-ready Debian 12 template on Proxmox VE, cloned by Terraform for every node.
# Credentials come from the environment (PROXMOX_URL, PROXMOX_USERNAME, PROXMOX_PASSWORD),
# never from this file. Nothing secret is copied into the image: the build user's key is
# removed, cloud-init and the machine-id are reset at the end.

variable "proxmox_url" {
  type    = string
  default = env("PROXMOX_URL")
}

variable "proxmox_username" {
  type    = string
  default = env("PROXMOX_USERNAME")
}

variable "proxmox_password" {
  type      = string
  default   = env("PROXMOX_PASSWORD")
  sensitive = true
}

variable "proxmox_node" {
  type    = string
  default = "pve1"
}

variable "storage_pool" {
  type    = string
  default = "local-lvm"
}

variable "iso_file" {
  type    = string
  default = "local:iso/debian-12-netinst.iso"
}

variable "template_name" {
  type    = string
  default = "debian-12-cloudinit"
}

variable "ssh_private_key_file" {
  type        = string
  description = "the build host's key for the temporary build user; it stays on the build host"
  default     = "~/.ssh/id_ed25519"
}

variable "template_vmid" {
  type    = number
  default = 9000
}

source "proxmox" "debian" {
  proxmox_url              = var.proxmox_url
  username                 = var.proxmox_username
  password                 = var.proxmox_password
  insecure_skip_tls_verify = false
  node                     = var.proxmox_node
  vm_id                    = var.template_vmid
  vm_name                  = var.template_name
  template_description     = "Debian 12, cloud-init ready; built by Packer"
  iso_file                 = var.iso_file
  unmount_iso              = true
  os                       = "l26"
  cores                    = 2
  memory                   = 2048
  qemu_agent               = true
  scsi_controller          = "virtio-scsi-single"
  cloud_init               = true
  cloud_init_storage_pool  = var.storage_pool

  disks {
    type              = "scsi"
    disk_size         = "16G"
    storage_pool      = var.storage_pool
    storage_pool_type = "lvm-thin"
    format            = "raw"
  }

  network_adapters {
    model  = "virtio"
    bridge = "vmbr0"
  }

  http_directory = "http"
  boot_wait      = "5s"
  boot_command = [
    "<esc><wait>auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg<enter>"
  ]

  ssh_username         = "packer"
  ssh_timeout          = "30m"
  ssh_private_key_file = var.ssh_private_key_file
}

build {
  sources = ["source.proxmox.debian"]

  provisioner "shell" {
    execute_command = "sudo sh -c '{{ .Vars }} {{ .Path }}'"
    inline = [
      "apt-get update",
      "apt-get install -y cloud-init qemu-guest-agent",
      "systemctl enable qemu-guest-agent",
      "userdel -r packer || true",
      "rm -f /etc/sudoers.d/packer",
      "cloud-init clean --logs",
      "truncate -s 0 /etc/machine-id",
      "rm -f /var/lib/dbus/machine-id",
      "rm -f /etc/ssh/ssh_host_*",
    ]
  }
}
