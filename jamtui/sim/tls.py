"""A certificate authority made at lab start, so clients verify the lab's HTTPS for real.

Proxmox is always HTTPS. With mutual TLS (`jamtui lab --tls`) Nomad and Consul are too, each
with a server certificate holding the names their own `tls cert create -server` puts in
(`server.global.nomad` / `server.dc1.consul`, `localhost`, 127.0.0.1), and they require a
client certificate from the same CA (`verify_https_client` / `tls.https.verify_incoming`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .context import TLSFiles

# what the real tools name their certificates for (and the lab's defaults: region global, dc1)
SERVER_NAMES = {"nomad": "server.global.nomad", "consul": "server.dc1.consul"}
CLIENT_NAMES = {"nomad": "cli.global.nomad", "consul": "client.dc1.consul"}


class CA:
    """A CA that issues server and client certificates (EC P-256, as the real tools do)."""

    def __init__(self, days: float = 30, name: str = "JamLab embedded lab CA") -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                              content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False,
                              encipher_only=False, decipher_only=False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           False)
            .sign(self.key, hashes.SHA256())
        )

    def write(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, names: list[str], cert_path: Path, key_path: Path, *, days: float = 30,
              client: bool = False, server: bool = True, not_before_days: float = 0,
              ) -> tuple[Path, Path]:
        """Write a certificate for `names` (DNS names and IP addresses) and its key (0600).
        `days` may be negative (already expired); `not_before_days` > 0 makes one that is
        not valid yet."""
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = []
        for h in dict.fromkeys(names):
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                alt.append(x509.DNSName(h))
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        if not_before_days > 0:
            start = now + datetime.timedelta(days=not_before_days)
            end = start + datetime.timedelta(days=max(days, 1))
        else:
            end = now + datetime.timedelta(days=days)
            start = min(now - datetime.timedelta(minutes=5), end - datetime.timedelta(days=1))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_private(key_path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return cert_path, key_path


def make_tls(directory: Path, hosts: list[str], *, mtls: bool = False,
             cert_days: dict[str, float] | None = None) -> TLSFiles:
    """Write a fresh CA and a server certificate for `hosts` into `directory`; with `mtls`,
    Nomad's and Consul's server certificates and a client certificate for each.
    `cert_days` (backend -> days) makes a server certificate that short-lived."""
    days = cert_days or {}
    directory.mkdir(parents=True, exist_ok=True)
    ca = CA(days=max(30, *days.values()) if days else 30)
    files = TLSFiles(ca.write(directory / "ca.pem"), directory / "server.pem",
                     directory / "server-key.pem")
    ca.issue(hosts, files.server_cert, files.server_key, days=days.get("proxmox", 30))
    if mtls:
        # HAProxy's frontend: what certbot gets for the public names (here from the lab's CA)
        files.servers["haproxy"] = ca.issue(
            ["jamfox.dev", "*.jamfox.dev", *hosts], directory / "haproxy-frontend.pem",
            directory / "haproxy-frontend-key.pem", days=days.get("haproxy", 30))
        for backend in ("nomad", "consul"):
            files.servers[backend] = ca.issue(
                [SERVER_NAMES[backend], "localhost", *hosts], directory / f"{backend}-server.pem",
                directory / f"{backend}-server-key.pem", days=days.get(backend, 30), client=True)
            files.clients[backend] = ca.issue(
                [CLIENT_NAMES[backend], "localhost"], directory / f"{backend}-cli.pem",
                directory / f"{backend}-cli-key.pem", days=30, client=True, server=False)
    return files


def write_private(path: Path, data: bytes) -> None:
    """Write a file with secrets in it: owner-only (0600) before the first byte is written,
    whatever the umask, also when it exists already (a reused --workdir)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with open(fd, "wb", closefd=False) as fh:
            fh.write(data)
    finally:
        os.close(fd)


def server_context(files: TLSFiles, backend: str = "") -> ssl.SSLContext:
    """Proxmox's context, or with mutual TLS a backend's: client certificates required (not
    by HAProxy's public frontend)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if backend == "haproxy":
        ctx.load_cert_chain(*files.servers[backend])
    elif backend in files.servers:
        ctx.load_cert_chain(*files.servers[backend])
        ctx.load_verify_locations(files.ca_cert)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.load_cert_chain(files.server_cert, files.server_key)
    return ctx
