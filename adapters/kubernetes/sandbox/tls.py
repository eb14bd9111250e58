"""A throwaway certificate authority and server certificate for `signoff sandbox`.

kubectl never sends a bearer token over plain HTTP ("You must be logged in to the server"), so the
standalone sandbox serves HTTPS. The CA is made fresh at every start and lives only in memory and
in the kubeconfig written for that run (`certificate-authority-data`); nothing is trusted
system-wide. The server certificate names 127.0.0.1, ::1 and localhost.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=30)
CONTEXT_NAME = "signoff-sandbox"


@dataclass(frozen=True)
class TlsMaterial:
    ca_pem: bytes
    cert_pem: bytes  # the server's certificate
    key_pem: bytes  # the server's private key (PKCS#8, unencrypted: it never leaves this process)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # load_cert_chain reads files only: a private directory, removed right after.
        with tempfile.TemporaryDirectory(prefix="signoff-tls-") as directory:
            cert, key = Path(directory) / "tls.crt", Path(directory) / "tls.key"
            cert.write_bytes(self.cert_pem)
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.key_pem)
            context.load_cert_chain(cert, key)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "signoff sandbox"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def generate(hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")) -> TlsMaterial:
    """A fresh CA (EC P-256) and a server certificate it signs for `hosts`."""
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)  # a little clock skew
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("signoff sandbox CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("signoff-sandbox"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return TlsMaterial(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
    )


def kubeconfig(url: str, token: str, ca_pem: bytes, *, namespace: str = "default") -> str:
    """A kubeconfig for one cluster, one user (the bearer token) and one current context.
    JSON is YAML, and every kubeconfig reader (kubectl, the Python client) takes it."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT_NAME, "cluster": {
            "server": url, "certificate-authority-data": base64.b64encode(ca_pem).decode("ascii")}}],
        "users": [{"name": CONTEXT_NAME, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT_NAME, "context": {
            "cluster": CONTEXT_NAME, "user": CONTEXT_NAME, "namespace": namespace}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }
    return json.dumps(document, indent=2) + "\n"


def kubeconfig_for_clusters(clusters: list[tuple[str, str, str]], ca_pem: bytes, *,
                            namespace: str = "default") -> str:
    """A kubeconfig with one cluster, user and context per `(name, url, token)`; the first is current."""
    ca = base64.b64encode(ca_pem).decode("ascii")
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url, "certificate-authority-data": ca}}
                     for name, url, _ in clusters],
        "users": [{"name": name, "user": {"token": token}} for name, _, token in clusters],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
                     for name, _, _ in clusters],
        "current-context": clusters[0][0],
        "preferences": {},
    }
    return json.dumps(document, indent=2) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds the bearer token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT
