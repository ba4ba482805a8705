"""`--tls`: a certificate made at start, trusted by clients given its CA and by nothing else;
the feeds trust it through `Settings.ca_file` (`serve --ca-file`, `QUANTSAAS_CA_FILE`)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from quantsaas.config import Settings
from quantsaas.errors import ConfigError
from quantsaas.fakes.binance import BinanceFakeConfig, FakeBinance
from quantsaas.fakes.tls import make_tls
from quantsaas.feeds.transport import venue_ssl_context


@pytest.mark.asyncio
async def test_a_tls_fake_is_trusted_with_its_ca_only(tmp_path: Path) -> None:
    fake = FakeBinance(BinanceFakeConfig(symbols=("BTCUSDT",)))
    fake.tls = make_tls(tmp_path / "tls")
    assert fake.tls.ca_file == tmp_path / "tls" / "ca.pem"
    assert b"BEGIN CERTIFICATE" in fake.tls.ca_file.read_bytes()
    assert fake.scheme == "wss"
    await fake.start()
    try:
        trusted = venue_ssl_context(fake.tls.ca_file)
        assert trusted is not None
        for host in ("127.0.0.1", "localhost"):
            url = f"https://{host}:{fake.port}/api/v3/ping"
            async with httpx.AsyncClient(verify=trusted) as http:
                assert (await http.get(url)).json() == {}
            async with httpx.AsyncClient() as http:  # the public CAs do not vouch for it
                with pytest.raises(httpx.ConnectError):
                    await http.get(url)
        stream = f"wss://127.0.0.1:{fake.port}/stream?streams=btcusdt@depth@100ms"
        async with connect(stream, ssl=trusted) as ws:
            assert "depthUpdate" in str(await ws.recv())
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(stream, ssl=ssl.create_default_context()):
                pass
    finally:
        await fake.stop()


def test_ca_file_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert venue_ssl_context(None) is None  # the libraries' default trust, unchanged
    ca = make_tls(tmp_path).ca_file
    monkeypatch.setenv("QUANTSAAS_CA_FILE", str(ca))
    assert Settings().ca_file == ca
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("nope")
    with pytest.raises(ConfigError, match="cannot load the CA file"):
        venue_ssl_context(bad)
    with pytest.raises(ConfigError, match="cannot load the CA file"):
        venue_ssl_context(tmp_path / "missing.pem")
