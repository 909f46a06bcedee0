terraform {
  required_version = ">= 1.5"
  required_providers {
    proxmox = {
      source  = "telmate/proxmox"
      version = "~> 3.0"
    }
  }
}

# The endpoint and API token come from the environment the provider reads (PM_API_URL,
# PM_API_TOKEN_ID, PM_API_TOKEN_SECRET; jamtui sets them from its config), never from files.
provider "proxmox" {
  pm_tls_insecure = false
}
