# -- Proxmox API (unset: the provider reads PM_API_URL / PM_API_TOKEN_ID / PM_API_TOKEN_SECRET)

variable "proxmox_api_url" {
  type        = string
  description = "Proxmox API endpoint, e.g. https://pve1.jamfox.dev:8006/api2/json"
  default     = null
}

variable "proxmox_api_token_id" {
  type        = string
  description = "API token id, user@realm!tokenname"
  default     = null
}

variable "proxmox_api_token_secret" {
  type        = string
  description = "API token secret: TF_VAR_proxmox_api_token_secret or PM_API_TOKEN_SECRET, never a file"
  sensitive   = true
  default     = null
}

# -- The VMs (which ones, and their sizes, come from the Ansible inventory)

variable "template_name" {
  type        = string
  description = "The Packer-built template every node is cloned from"
  default     = "debian-12-cloudinit"
}

variable "storage" {
  type        = string
  description = "Storage pool for the disks and the cloud-init drive"
  default     = "local-lvm"
}

variable "bridge" {
  type        = string
  description = "Bridge the first NIC is attached to"
  default     = "vmbr0"
}

variable "gateway" {
  type        = string
  description = "Default gateway of the nodes; unset: the inventory's lab_gateway"
  default     = null
}

variable "ssh_public_keys" {
  type        = string
  description = "Public keys cloud-init authorises for its user, one per line (public: not a secret)"
  default     = ""
}

variable "cloudinit_password" {
  type        = string
  description = "Optional console password for cloud-init's user (TF_VAR_cloudinit_password); unset: none"
  sensitive   = true
  default     = null
}
