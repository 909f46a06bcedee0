terraform {
  required_version = ">= 1.5"
  required_providers {
    proxmox = {
      source = "telmate/proxmox"
      # Telmate publishes the 3.x line as release candidates only: pinned exactly (a "~> 3.0"
      # constraint matches no pre-release and `terraform init` would find nothing).
      version = "3.0.2-rc07"
    }
  }
}

# Credentials are variables (sensitive, no value in any file). Left unset (null), the provider
# falls back to the environment it reads: PM_API_URL, PM_API_TOKEN_ID, PM_API_TOKEN_SECRET
# (what jamtui sets from its config), or TF_VAR_proxmox_api_* for these variables.
provider "proxmox" {
  pm_api_url          = var.proxmox_api_url
  pm_api_token_id     = var.proxmox_api_token_id
  pm_api_token_secret = var.proxmox_api_token_secret
  pm_tls_insecure     = false
}
