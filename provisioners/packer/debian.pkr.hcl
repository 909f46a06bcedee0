# A cloud-init-ready Debian 12 VM template on Proxmox VE ("debian-12-cloudinit", VMID 9000),
# the one Terraform clones for every node.
#
# Works with Debian's packer 1.6 (its built-in `proxmox` builder logs in with a username and
# password; API tokens need packer >= 1.7 and the proxmox plugin). Credentials come from the
# environment (PROXMOX_URL, PROXMOX_USERNAME, PROXMOX_PASSWORD) or -var, never from a file.
#
# Nothing secret ends up in the image: the build user has a random one-off password (never
# stored), and is deleted at the end with its sudo rule; the installer's logs, SSH host keys,
# cloud-init state and the machine-id are removed so every clone gets its own.

variable "proxmox_url" {
  type        = string
  description = "Proxmox API endpoint, e.g. https://pve1.jamfox.dev:8006/api2/json"
  default     = env("PROXMOX_URL")
}

variable "proxmox_username" {
  type        = string
  description = "Proxmox API user, e.g. packer@pve"
  default     = env("PROXMOX_USERNAME")
}

variable "proxmox_password" {
  type        = string
  description = "The API user's password (PROXMOX_PASSWORD); never written to a file"
  default     = env("PROXMOX_PASSWORD")
  sensitive   = true
}

variable "proxmox_insecure" {
  type        = bool
  description = "Skip TLS verification of the Proxmox API (self-signed certificate)"
  default     = false
}

variable "proxmox_node" {
  type        = string
  description = "The hypervisor the template is built on"
  default     = "pve1"
}

variable "storage_pool" {
  type        = string
  description = "Storage for the template's disk and cloud-init drive"
  default     = "local-lvm"
}

variable "storage_pool_type" {
  type    = string
  default = "lvm-thin"
}

variable "bridge" {
  type    = string
  default = "vmbr0"
}

variable "iso_file" {
  type        = string
  description = "The Debian netinst ISO, already on a Proxmox storage"
  default     = "local:iso/debian-12-amd64-netinst.iso"
}

variable "template_vmid" {
  type    = number
  default = 9000
}

variable "template_name" {
  type    = string
  default = "debian-12-cloudinit"
}

locals {
  # one-off password of the temporary build user: random per build, given to the installer
  # on its command line, deleted with the user at the end
  build_password = uuidv4()
}

source "proxmox" "debian" {
  proxmox_url              = var.proxmox_url
  username                 = var.proxmox_username
  password                 = var.proxmox_password
  insecure_skip_tls_verify = var.proxmox_insecure
  node                     = var.proxmox_node

  vm_id                = var.template_vmid
  vm_name              = var.template_name
  template_name        = var.template_name
  template_description = "Debian 12, cloud-init ready; built by Packer from provisioners/packer"
  os                   = "l26"
  cores                = 2
  memory               = 2048
  qemu_agent           = true
  scsi_controller      = "virtio-scsi-single"

  iso_file    = var.iso_file
  unmount_iso = true

  disks {
    type              = "scsi"
    disk_size         = "8G"
    storage_pool      = var.storage_pool
    storage_pool_type = var.storage_pool_type
    format            = "raw"
  }

  network_adapters {
    model  = "virtio"
    bridge = var.bridge
  }

  cloud_init              = true
  cloud_init_storage_pool = var.storage_pool

  http_directory = "http"
  boot_wait      = "10s"
  boot_command = [
    "<esc><wait>",
    "auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg ",
    "netcfg/get_hostname=debian netcfg/get_domain= ",
    "passwd/user-password=${local.build_password} ",
    "passwd/user-password-again=${local.build_password}",
    "<enter>",
  ]

  communicator = "ssh"
  ssh_username = "packer"
  ssh_password = local.build_password
  ssh_timeout  = "30m"
}

build {
  sources = ["source.proxmox.debian"]

  # cloud-init reads Proxmox's drive (NoCloud, or ConfigDrive); the guest agent reports the IPs
  provisioner "shell" {
    execute_command = "sudo -E sh -eu '{{ .Path }}'"
    inline = [
      "export DEBIAN_FRONTEND=noninteractive",
      "apt-get update",
      "apt-get install -y --no-install-recommends cloud-init qemu-guest-agent sudo",
      "printf 'datasource_list: [NoCloud, ConfigDrive]\\n' > /etc/cloud/cloud.cfg.d/99-pve.cfg",
      "systemctl enable qemu-guest-agent",
      "apt-get clean",
    ]
  }

  # Leave nothing of the build behind. The last step deletes the user packer is logged in as,
  # so packer must not clean up after the script (skip_clean): it removes itself.
  provisioner "shell" {
    execute_command = "sudo sh -eu '{{ .Path }}'"
    skip_clean      = true
    inline = [
      "rm -f -- \"$0\"",
      "rm -rf /var/log/installer /var/lib/apt/lists/*",
      "rm -f /etc/ssh/ssh_host_*",
      "cloud-init clean --logs --seed",
      "truncate -s 0 /etc/machine-id",
      "rm -f /var/lib/dbus/machine-id",
      "rm -f /etc/sudoers.d/packer /root/.bash_history",
      "userdel -f -r packer",
    ]
  }
}
