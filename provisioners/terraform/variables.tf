variable "inventory_file" {
  type        = string
  description = "The Ansible inventory every node comes from (not typed twice)"
  default     = "../ansible/inventory.yml"
}

variable "template_name" {
  type        = string
  description = "The Packer-built template to clone"
  default     = "debian-12-cloudinit"
}

variable "storage" {
  type    = string
  default = "local-lvm"
}

variable "bridge" {
  type    = string
  default = "vmbr0"
}

variable "ssh_public_keys" {
  type        = string
  description = "Public keys cloud-init authorises for root (public: not a secret)"
  default     = ""
}

variable "cloudinit_password" {
  type        = string
  description = "Optional console password for cloud-init's user (TF_VAR_cloudinit_password); empty means none"
  sensitive   = true
  default     = ""
}
