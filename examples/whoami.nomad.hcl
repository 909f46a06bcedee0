# A small service for the embedded lab: `jamtui job run examples/whoami.nomad.hcl`
# (or `n` in the cockpit's :jobs). Change the image and run it again to see a canary
# deployment wait for its promotion (`p` in :deployments).
job "whoami" {
  datacenters = ["*"]
  type        = "service"

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  group "web" {
    count = 2

    update {
      max_parallel = 1
      canary       = 1
      auto_promote = false
    }

    network {
      port "http" {}
    }

    service {
      name = "whoami"
      port = "http"
      tags = ["urlprefix-whoami.jamfox.dev/"]

      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "whoami" {
      driver = "docker"

      config {
        image = "traefik/whoami:v1.10"
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
