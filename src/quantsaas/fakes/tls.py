"""TLS for the fake exchanges: a throwaway CA and a server certificate, made at start.

Real exchange clients insist on `wss://` and `https://` (ccxt rewrites nothing and refuses plain
sockets for these venues), so a fake must speak TLS to be a drop-in target. The CA is created
fresh on every start (nothing secret outlives the process: its key never touches the disk), the
leaf certificate names 127.0.0.1, ::1 and localhost, and only the CA certificate is written out:
clients trust it with `serve --ca-file` / `QUANTSAAS_CA_FILE`, ccxt's `cafile`, `curl --cacert`.
"""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme

HOSTS = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True, slots=True)
class FakeTls:
    ca_file: Path
    """The CA certificate (PEM) a client must trust."""
    server: ssl.SSLContext
    """The server side: the leaf certificate and its key, loaded."""

    def client(self) -> ssl.SSLContext:
        """A client context that trusts this CA only (tests)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_tls(directory: Path | None = None, hosts: tuple[str, ...] = HOSTS) -> FakeTls:
    """A new CA and a certificate for `hosts`; the CA certificate is written as `ca.pem` into
    `directory` (created if missing; default: a new private temporary directory)."""
    folder = (
        Path(tempfile.mkdtemp(prefix="quantsaas-fake-tls-")) if directory is None else directory
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Quant-SaaS fake exchange")
    leaf = ca.issue_cert(*hosts)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server)
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return FakeTls(ca_file=ca_file, server=server)


__all__ = ["HOSTS", "FakeTls", "make_tls"]
