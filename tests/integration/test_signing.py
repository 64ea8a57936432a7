"""attest.signing against the local instance and the real timestamp authority."""

from __future__ import annotations

import json

from attest.signing import Instance, InstanceKind, sign, verify_bundle
from attest.statement import build_statement
from attest.subjects import Subject
from tests.fakes.oidc_issuer import FakeIssuer
from tests.fakes.sigstore_instance import SigstoreInstance

STATEMENT = build_statement(
    [Subject("app.tar.gz", {"sha256": "ab" * 32})], "https://slsa.dev/provenance/v1", {}
).data


def test_a_tenant_instance_is_verified_against_the_trust_material_it_publishes(tsa):
    """GHE.com tenants have their own Fulcio and TSA and no root shipped with attest."""
    with (
        FakeIssuer() as issuer,
        SigstoreInstance(issuer, ct_log=False, rekor=False, ca_org="GitHub, Inc.") as local,
    ):
        tenant = Instance(InstanceKind.GITHUB, local.url, (tsa.url,))
        signed = sign(STATEMENT, instance=tenant, identity_token=issuer.mint("sigstore"))
        paths = [path for _, path, _ in local.requests]
        root = local.trusted_root(tsa_chains=[tsa.chain_der])
    assert "/api/v2/trustBundle" in paths
    verified = verify_bundle(signed.bundle, trusted_roots=[json.dumps(root).encode()])
    assert verified.payload == STATEMENT
    assert verified.instance == "github"
