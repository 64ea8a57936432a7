from __future__ import annotations

import logging
import re
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attest import oidc
from attest.oidc import (
    MISSING_PERMISSION,
    REQUIRED_CLAIMS,
    OidcError,
    TokenSource,
    issuer_for,
    provenance_claims,
    verify_token,
)
from tests.fakes.oidc_issuer import FakeIssuer


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    oidc._reset_cache()
    yield
    oidc._reset_cache()


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        yield fake


def _source(issuer: FakeIssuer, seen: list[str] | None = None) -> TokenSource:
    return TokenSource(
        request_url=issuer.request_url,
        request_token=issuer.request_token,
        on_token=None if seen is None else seen.append,
    )


def _paths(issuer: FakeIssuer) -> list[str]:
    return [seen.path.partition("?")[0] for seen in issuer.requests]


def _error(token: str, issuer: FakeIssuer, audience: str = "nobody", **kwargs) -> str:
    with pytest.raises(OidcError) as caught:
        verify_token(token, issuer=issuer.url, audience=audience, **kwargs)
    return caught.value.message


# --- issuer_for ---------------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["https://github.com", "https://github.com/", "", "  "])
def test_issuer_for_github_com(server):
    assert issuer_for(server) == "https://token.actions.githubusercontent.com"


@pytest.mark.parametrize("server", ["https://octocorp.ghe.com", "https://OctoCorp.ghe.com/"])
def test_issuer_for_ghe_com_tenant(server):
    assert issuer_for(server) == "https://token.actions.octocorp.ghe.com"


@pytest.mark.parametrize(
    "server", ["https://github.example.com", "http://github.com", "https://a.b.ghe.com"]
)
def test_issuer_for_enterprise_server_is_refused(server):
    with pytest.raises(OidcError) as caught:
        issuer_for(server)
    assert caught.value.message.startswith(f"Invalid server URL: {server}")
    assert "not available on GitHub Enterprise Server" in caught.value.message


def test_issuer_override_wins():
    override = "http://127.0.0.1:8080/"
    assert issuer_for("https://github.example.com", override=override) == "http://127.0.0.1:8080"
    assert issuer_for("https://github.com", override="https://x.example/e") == "https://x.example/e"


# --- TokenSource --------------------------------------------------------------------------------


def test_token_request_merges_audience_and_sends_the_bearer(issuer):
    seen: list[str] = []
    token = _source(issuer, seen).token("https://github.com/octo-org")
    (request,) = issuer.requests
    path, _, query = request.path.partition("?")
    assert path == "/token"
    assert urllib.parse.parse_qs(query) == {
        "api-version": ["2.0"],
        "audience": ["https://github.com/octo-org"],
    }
    assert request.bearer
    assert seen == [token]
    claims = verify_token(token, issuer=issuer.url, audience="https://github.com/octo-org")
    assert claims["aud"] == "https://github.com/octo-org"


def test_an_audience_already_in_the_url_is_replaced(issuer):
    source = TokenSource(
        request_url=issuer.request_url + "&audience=old", request_token=issuer.request_token
    )
    source.token("sigstore")
    query = urllib.parse.parse_qs(issuer.requests[0].path.partition("?")[2])
    assert query["audience"] == ["sigstore"]


@pytest.mark.parametrize(
    ("url", "token"), [(None, "t"), ("http://127.0.0.1:9/token?api-version=2.0", None), ("", "")]
)
def test_missing_request_variables_mean_missing_permission(url, token):
    with pytest.raises(OidcError) as caught:
        TokenSource(request_url=url, request_token=token).token("nobody")
    assert caught.value.message == MISSING_PERMISSION
    assert MISSING_PERMISSION == (
        'missing "id-token" permission. Please add "permissions: id-token: write" to your workflow.'
    )


def test_a_refused_token_request_is_reported_without_the_secret(issuer):
    # A body echoing the secret, which straddles the excerpt's cut at 300 characters.
    body = f'{{"message": "Forbidden", "detail": "{"x" * 250}{issuer.request_token}"}}'
    issuer.token_error = (403, body)
    with pytest.raises(OidcError) as caught:
        _source(issuer).token("nobody")
    report = caught.value.report()
    assert "Failed to get ID token" in report
    assert "HTTP 403" in report
    assert "Forbidden" in report
    assert issuer.request_token not in report
    assert issuer.request_token[:8] not in report
    assert len(issuer.requests) == 1  # a 403 is not retried


def test_a_wrong_request_token_is_refused(issuer):
    source = TokenSource(request_url=issuer.request_url, request_token="not-the-token")
    with pytest.raises(OidcError, match="HTTP 401"):
        source.token("nobody")
    assert not issuer.requests[0].bearer


def test_a_response_without_a_value_is_an_error(issuer):
    issuer.token_error = (200, '{"count": 0}')
    with pytest.raises(OidcError, match='no ID token \\(no "value"\\)'):
        _source(issuer).token("nobody")


def test_on_token_sees_every_token(issuer):
    seen: list[str] = []
    source = _source(issuer, seen)
    first = source.token("sigstore")
    claims = provenance_claims(source, issuer=issuer.url)
    assert len(seen) == 2
    assert seen[0] == first
    assert seen[1] != first
    assert claims["jti"] != verify_token(first, issuer=issuer.url, audience="sigstore")["jti"]


# --- verify_token: the good path ----------------------------------------------------------------


def test_provenance_claims_verify_and_return_every_required_claim(issuer):
    claims = provenance_claims(_source(issuer), issuer=issuer.url)
    assert claims["aud"] == "nobody"
    assert claims["iss"] == issuer.url
    for name in REQUIRED_CLAIMS:
        assert claims[name] == issuer.claims[name]
    assert _paths(issuer) == ["/token", "/.well-known/openid-configuration", "/.well-known/jwks"]
    assert not issuer.requests[1].bearer  # the request token goes to the token endpoint only


def test_discovery_and_keys_are_cached_per_issuer(issuer):
    for _ in range(3):
        verify_token(issuer.mint("nobody"), issuer=issuer.url, audience="nobody")
    assert _paths(issuer) == ["/.well-known/openid-configuration", "/.well-known/jwks"]


def test_an_audience_list_is_accepted(issuer):
    token = issuer.mint("nobody", aud=["sigstore", "nobody"])
    assert verify_token(token, issuer=issuer.url, audience="nobody")["aud"] == [
        "sigstore",
        "nobody",
    ]


def test_an_enterprise_issuer_below_the_issuer_is_accepted(issuer):
    token = issuer.mint("nobody", iss=issuer.url + "/octo-enterprise")
    claims = verify_token(token, issuer=issuer.url + "/", audience="nobody")
    assert claims["iss"] == issuer.url + "/octo-enterprise"


def test_es256_tokens_verify(issuer):
    kid = issuer.add_key(ec.generate_private_key(ec.SECP256R1()), kid="ec-1")
    token = issuer.mint("nobody", kid=kid)
    assert verify_token(token, issuer=issuer.url, audience="nobody")["sub"]
    header, _, signature = token.split(".")
    forged = issuer.mint("nobody", kid=kid, run_id="1").split(".")[1]
    assert "does not verify" in _error(f"{header}.{forged}.{signature}", issuer)


def test_ps256_tokens_verify(issuer):
    token = issuer.mint("nobody", alg="PS256")
    # The active key's JWK says "alg": "RS256", which forbids PS256 with it.
    assert "token algorithm PS256 does not match key" in _error(token, issuer)
    kid = issuer.add_key()
    issuer.jwk_overrides[kid] = {"alg": None}  # a JWK without "alg" may verify PS256
    oidc._reset_cache()
    token = issuer.mint("nobody", kid=kid, alg="PS256")
    assert verify_token(token, issuer=issuer.url, audience="nobody")["aud"] == "nobody"
    header, payload, _ = token.split(".")
    rs256 = issuer.mint("nobody", kid=kid).split(".")[2]  # a PKCS#1 v1.5 signature is no PSS one
    assert "does not verify" in _error(f"{header}.{payload}.{rs256}", issuer)


def test_a_token_without_kid_uses_the_only_key(issuer):
    token = issuer.mint("nobody", header={"kid": None})
    assert verify_token(token, issuer=issuer.url, audience="nobody")["aud"] == "nobody"


def test_a_token_without_kid_is_refused_when_there_are_several_keys(issuer):
    issuer.add_key()
    message = _error(issuer.mint("nobody", header={"kid": None}), issuer)
    assert "the token has no kid and the JWKS of issuer" in message
    assert message.endswith("has several keys")


# --- verify_token: refusals ---------------------------------------------------------------------


def test_wrong_audience(issuer):
    message = _error(issuer.mint("sigstore"), issuer)
    assert message.startswith("Failed to get ID token: ")
    assert '"aud"' in message
    assert "'sigstore'" in message


def test_expired_token_with_leeway(issuer):
    token = issuer.mint("nobody")
    exp = verify_token(token, issuer=issuer.url, audience="nobody")["exp"]
    assert verify_token(token, issuer=issuer.url, audience="nobody", now=exp + 59)
    assert "expired" in _error(token, issuer, now=exp + 61)
    issuer.expire_in = -120
    assert "expired" in _error(issuer.mint("nobody"), issuer)


def test_not_yet_valid_token(issuer):
    now = time.time()
    assert "not valid for another" in _error(issuer.mint("nobody", nbf=int(now) + 120), issuer)
    assert "in the future (iat)" in _error(issuer.mint("nobody", iat=int(now) + 120), issuer)
    assert verify_token(
        issuer.mint("nobody", nbf=int(now) + 30), issuer=issuer.url, audience="nobody"
    )


def test_a_token_without_exp_is_refused(issuer):
    assert 'missing required "exp" claim' in _error(issuer.mint("nobody", exp=None), issuer)


@pytest.mark.parametrize(
    "iss",
    ["https://token.actions.githubusercontent.com", "{url}1", "{url}.evil.example", "{url}x/y"],
)
def test_wrong_issuer(issuer, iss):
    iss = iss.format(url=issuer.url)
    message = _error(issuer.mint("nobody", iss=iss), issuer)
    assert message == f'Failed to get ID token: Unexpected "iss" claim: {iss}'


def test_token_signed_by_another_key(issuer):
    intruder = issuer.new_rsa_key()
    message = _error(issuer.mint("nobody", signing_key=intruder), issuer)
    assert f"signature does not verify with key '{issuer.active_kid}'" in message


def test_tampered_payload(issuer):
    header, _, signature = issuer.mint("nobody").split(".")
    other = issuer.mint("nobody", repository="evil/repo").split(".")[1]
    assert "does not verify" in _error(f"{header}.{other}.{signature}", issuer)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(issuer, alg):
    token = issuer.mint("nobody", alg="none", header={"alg": alg})
    assert token.endswith(".")
    assert "not signed (alg none)" in _error(token, issuer)
    assert issuer.requests == []  # refused before any key is fetched


def test_other_algorithms_are_refused(issuer):
    token = issuer.mint("nobody", header={"alg": "HS256"})
    assert "unsupported token algorithm 'HS256'" in _error(token, issuer)


def test_an_algorithm_that_does_not_match_the_key_type_is_refused(issuer):
    issuer.jwk_overrides[issuer.active_kid] = {"alg": None}  # only "kty" tells
    ec_key = ec.generate_private_key(ec.SECP256R1())
    token = issuer.mint("nobody", signing_key=ec_key)  # ES256, naming the RSA kid
    assert "token algorithm ES256 does not match key" in _error(token, issuer)
    assert "of type 'RSA'" in _error(token, issuer)


def test_critical_header_extensions_are_refused(issuer):
    token = issuer.mint("nobody", header={"crit": ["exp"]})
    assert "critical extensions" in _error(token, issuer)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.e30"])
def test_malformed_tokens(issuer, token):
    assert "malformed token" in _error(token, issuer)


def test_missing_claims_are_named_in_order(issuer):
    del issuer.claims["sha"]
    issuer.claims["run_id"] = None
    message = _error(issuer.mint("nobody"), issuer)
    assert message == "Failed to get ID token: Missing claims: sha, run_id"


def test_required_claims_must_be_strings(issuer):
    message = _error(issuer.mint("nobody", run_id=9876543210), issuer)
    assert message == "Failed to get ID token: Claims are not strings: run_id"


# --- key rotation -------------------------------------------------------------------------------


def test_an_unknown_kid_refetches_the_jwks_once(issuer):
    verify_token(issuer.mint("nobody"), issuer=issuer.url, audience="nobody")
    new_kid = issuer.rotate()
    claims = verify_token(issuer.mint("nobody"), issuer=issuer.url, audience="nobody")
    assert claims["aud"] == "nobody"
    assert issuer.active_kid == new_kid
    assert _paths(issuer) == [
        "/.well-known/openid-configuration",
        "/.well-known/jwks",
        "/.well-known/jwks",
    ]


def test_a_kid_still_unknown_after_the_refetch_is_refused(issuer):
    verify_token(issuer.mint("nobody"), issuer=issuer.url, audience="nobody")
    token = issuer.mint("nobody", header={"kid": "retired-key"})
    assert "has no key id 'retired-key'" in _error(token, issuer)
    assert _paths(issuer).count("/.well-known/jwks") == 2


def test_an_unknown_kid_on_first_fetch_is_not_fetched_twice(issuer):
    token = issuer.mint("nobody", header={"kid": "retired-key"})
    assert "has no key id 'retired-key'" in _error(token, issuer)
    assert _paths(issuer) == ["/.well-known/openid-configuration", "/.well-known/jwks"]


# --- transport and discovery --------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://token.example.com", "ftp://127.0.0.1", "127.0.0.1:80"])
def test_plain_http_issuers_must_be_loopback(issuer, url):
    with pytest.raises(OidcError, match="is not an https:// URL"):
        verify_token(issuer.mint("nobody", iss=url), issuer=url, audience="nobody")


def test_plain_http_jwks_uri_must_be_loopback(issuer):
    issuer.discovery["jwks_uri"] = "http://keys.example.com/jwks"
    with pytest.raises(
        OidcError, match=re.escape("JWKS URL http://keys.example.com/jwks is not an https")
    ):
        verify_token(issuer.mint("nobody"), issuer=issuer.url, audience="nobody")


def test_no_openid_configuration(issuer):
    where = issuer.url + "/nowhere"
    with pytest.raises(OidcError) as caught:
        verify_token(issuer.mint("nobody", iss=where), issuer=where, audience="nobody")
    assert caught.value.message.startswith("Failed to get ID token: No OpenID configuration found")
    assert "HTTP 404" in caught.value.message


def test_an_unreachable_issuer_is_reported(monkeypatch):
    monkeypatch.setattr(oidc, "_RETRY", oidc._http.RetryPolicy(attempts=2, initial_wait=0.001))
    # A well-formed RS256 token: the key lookup fails before its signature matters.
    token = "eyJhbGciOiJSUzI1NiJ9.e30.AAAA"
    with pytest.raises(
        OidcError, match=re.escape("No OpenID configuration found: http://127.0.0.1:9/")
    ):
        # Port 9 on loopback: nothing listens there.
        verify_token(token, issuer="http://127.0.0.1:9", audience="x")
    with pytest.raises(OidcError, match="could not reach the OIDC token endpoint"):
        TokenSource(request_url="http://127.0.0.1:9/t?a=1", request_token="t").token("x")


def test_tokens_are_never_logged(issuer, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    provenance_claims(_source(issuer, seen), issuer=issuer.url)
    assert "verified an OIDC token" in caplog.text
    assert seen[0] not in caplog.text
    assert seen[0].split(".")[2] not in caplog.text
    assert issuer.request_token not in caplog.text
