"""The client's address: forwarding headers believed only from trusted proxies, and then only right to left."""

from __future__ import annotations

import pytest

from podrun.client_address import client_address
from podrun.settings import ProxySettings

NO_PROXIES = ProxySettings()
INGRESS = ProxySettings.model_validate({"trusted": ["10.0.0.0/8", "127.0.0.1"]})
FORWARDED = ProxySettings.model_validate({"trusted": ["10.0.0.0/8"], "header": "forwarded"})


@pytest.mark.parametrize(
    ("peer", "values", "proxies", "expected"),
    [
        pytest.param("127.0.0.1", ["198.51.100.7"], NO_PROXIES, "127.0.0.1", id="no-proxies-trusted-by-default"),
        pytest.param("203.0.113.9", ["198.51.100.7"], INGRESS, "203.0.113.9", id="untrusted-peer-forges"),
        pytest.param("10.1.2.3", ["198.51.100.7"], INGRESS, "198.51.100.7", id="trusted-ingress"),
        pytest.param("10.1.2.3", ["1.2.3.4, 198.51.100.7"], INGRESS, "198.51.100.7", id="client-prefix-ignored"),
        pytest.param("10.1.2.3", ["1.2.3.4, 198.51.100.7, 10.9.9.9"], INGRESS, "198.51.100.7", id="two-proxies"),
        pytest.param("10.1.2.3", ["1.2.3.4", "198.51.100.7"], INGRESS, "198.51.100.7", id="repeated-header"),
        pytest.param("10.1.2.3", ["garbage"], INGRESS, "10.1.2.3", id="garbage-not-believed"),
        pytest.param("10.1.2.3", ["198.51.100.7:4711"], INGRESS, "198.51.100.7", id="with-port"),
        pytest.param("10.1.2.3", [], INGRESS, "10.1.2.3", id="no-header"),
        pytest.param("10.1.2.3", ['for="[2001:db8::1]:4711";proto=https'], FORWARDED, "2001:db8::1", id="forwarded"),
        pytest.param("10.1.2.3", ["for=unknown"], FORWARDED, "10.1.2.3", id="forwarded-unknown"),
        pytest.param(None, ["198.51.100.7"], INGRESS, None, id="no-peer"),
    ],
)
def test_the_client_address(peer: str | None, values: list[str], proxies: ProxySettings, expected: str | None) -> None:
    assert client_address(peer, values, proxies) == expected
