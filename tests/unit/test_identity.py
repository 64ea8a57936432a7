from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attest.errors import AttestError, UsageError
from attest.identity import (
    GITHUB_ISSUER,
    IdentityError,
    IdentityPolicy,
    fulcio_extensions,
    san,
)
from tests.shared_data import github_bundles

BUNDLES = github_bundles()
PUBLIC_GOOD = "attest-build-provenance-13532655.sigstore.json"
GITHUB_INSTANCE = "attest-build-provenance-13531551.sigstore.json"
REUSABLE = "reusable-workflow-attestation.sigstore.json"
CUSTOM_ISSUER = "custom-issuer.sigstore.json"
WHEEL = "github_provenance_demo-0.0.12-py3-none-any-bundle.jsonl"
EMAIL = "sigstoreBundle-invalid-signature.json"

PROBER_SAN = (
    "https://github.com/actions/attest-build-provenance/.github/workflows/prober.yml"
    "@refs/heads/main"
)
PROBER_SHA = "ba965ac88abfc6fa49344893ed19e5bf479a07d6"
REUSABLE_SAN = (
    "https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml"
    "@09b495c3f12c7881b3cc17209a327792065c1a1d"
)


def _cert(name: str) -> x509.Certificate:
    path = BUNDLES / name
    assert path.is_file(), f"test data missing: {path}"
    text = path.read_text()
    bundle = json.loads(text.splitlines()[0] if name.endswith(".jsonl") else text)
    raw = bundle["verificationMaterial"]["certificate"]["rawBytes"]
    return x509.load_der_x509_certificate(base64.b64decode(raw))


def _synthetic(
    extensions: dict[int, bytes],
    *,
    uri: str | None = "https://github.com/o/r/.github/workflows/w.yml@refs/heads/main",
    email: str | None = None,
) -> x509.Certificate:
    """A self-signed certificate carrying exactly these raw Fulcio extension values."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(minutes=10))
    )
    names: list[x509.GeneralName] = []
    if uri is not None:
        names.append(x509.UniformResourceIdentifier(uri))
    if email is not None:
        names.append(x509.RFC822Name(email))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    for number, value in extensions.items():
        oid = x509.ObjectIdentifier(f"1.3.6.1.4.1.57264.1.{number}")
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
    return builder.sign(key, hashes.SHA256())


def _utf8(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 0x80
    return bytes([0x0C, len(data)]) + data


def _github_cert(**overrides: str) -> x509.Certificate:
    """A synthetic GitHub Actions certificate for o/r; overrides by extension name."""
    values = {
        "issuer": GITHUB_ISSUER,
        "runner_environment": "github-hosted",
        "source_repository_uri": "https://github.com/o/r",
        "source_repository_owner_uri": "https://github.com/o",
        "source_repository_ref": "refs/heads/main",
        "source_repository_digest": "a" * 40,
    } | overrides
    numbers = {
        "issuer": 8,
        "runner_environment": 11,
        "source_repository_uri": 12,
        "source_repository_owner_uri": 16,
        "source_repository_ref": 14,
        "source_repository_digest": 13,
    }
    return _synthetic({numbers[k]: _utf8(v) for k, v in values.items()})


# -- extensions -----------------------------------------------------------------------------


def test_extensions_of_the_public_good_prober():
    ext = fulcio_extensions(_cert(PUBLIC_GOOD))
    assert ext["issuer"] == GITHUB_ISSUER
    assert ext["build_signer_uri"] == PROBER_SAN
    assert ext["build_signer_digest"] == PROBER_SHA
    assert ext["runner_environment"] == "github-hosted"
    assert ext["source_repository_uri"] == "https://github.com/actions/attest-build-provenance"
    assert ext["source_repository_digest"] == PROBER_SHA
    assert ext["source_repository_ref"] == "refs/heads/main"
    assert ext["source_repository_identifier"] == "760702757"
    assert ext["source_repository_owner_uri"] == "https://github.com/actions"
    assert ext["source_repository_owner_identifier"] == "44036562"
    assert ext["build_config_uri"] == (
        "https://github.com/actions/attest-build-provenance/.github/workflows/"
        "prober-public-good.yml@refs/heads/main"
    )
    assert ext["build_config_digest"] == PROBER_SHA
    assert ext["build_trigger"] == "schedule"
    assert ext["run_invocation_uri"] == (
        "https://github.com/actions/attest-build-provenance/actions/runs/19459333539/attempts/1"
    )
    assert ext["source_repository_visibility_at_signing"] == "public"
    assert "deployment_environment" not in ext
    # The deprecated raw extensions, by their own names.
    assert ext["github_workflow_name"] == "Public-Good Sigstore Prober"
    assert ext["github_workflow_repository"] == "actions/attest-build-provenance"
    assert ext["github_workflow_trigger"] == "schedule"


def test_extensions_of_githubs_instance_and_a_private_repository():
    ext = fulcio_extensions(_cert(GITHUB_INSTANCE))
    assert ext["build_config_uri"] == (
        "https://github.com/actions/attest-build-provenance/.github/workflows/"
        "prober-github.yml@refs/heads/main"
    )
    assert ext["github_workflow_name"] == "GitHub Sigstore Prober"
    wheel = fulcio_extensions(_cert(WHEEL))
    assert wheel["source_repository_visibility_at_signing"] == "private"
    assert wheel["source_repository_identifier"] == "763287532"
    assert wheel["build_trigger"] == "workflow_dispatch"


def test_reusable_workflow_san_is_the_called_workflow_build_config_the_caller():
    cert = _cert(REUSABLE)
    ext = fulcio_extensions(cert)
    assert san(cert) == REUSABLE_SAN
    # 127 bytes: the longest value with a short-form DER length.
    assert ext["build_signer_uri"] == REUSABLE_SAN
    assert len(REUSABLE_SAN.encode()) == 127
    assert ext["build_signer_digest"] == "09b495c3f12c7881b3cc17209a327792065c1a1d"
    assert ext["build_config_uri"] == (
        "https://github.com/malancas/attest-demo/.github/workflows/shared.yml@refs/heads/main"
    )
    assert ext["source_repository_uri"] == "https://github.com/malancas/attest-demo"
    assert ext["source_repository_digest"] == "95baf27389e83e6a5c48f42e190d48d7abcea19e"


def test_custom_issuer_extension():
    ext = fulcio_extensions(_cert(CUSTOM_ISSUER))
    assert ext["issuer"] == "https://token.actions.githubusercontent.com/hammer-time"
    assert ext["source_repository_owner_uri"] == "https://github.com/too-legit"


@pytest.mark.parametrize(
    "name",
    [
        PUBLIC_GOOD,
        GITHUB_INSTANCE,
        "attest-build-provenance-13581567.sigstore.json",
        "attest-build-provenance-13739985.sigstore.json",
        REUSABLE,
        CUSTOM_ISSUER,
        WHEEL,
    ],
)
def test_every_actions_certificate_has_the_current_extensions(name):
    cert = _cert(name)
    ext = fulcio_extensions(cert)
    assert san(cert) == ext["build_signer_uri"]
    assert ext["source_repository_uri"].startswith(ext["source_repository_owner_uri"] + "/")
    assert len(ext["source_repository_digest"]) == 40
    # The deprecated and current extensions agree where both exist.
    assert ext["github_workflow_ref"] == ext["source_repository_ref"]
    assert ext["github_workflow_sha"] == ext["source_repository_digest"]


def test_old_certificate_falls_back_to_the_deprecated_issuer_and_email_san():
    cert = _cert(EMAIL)
    assert san(cert) == "brian@dehamer.com"
    assert fulcio_extensions(cert) == {
        "github_workflow_issuer": "https://github.com/login/oauth",
        "issuer": "https://github.com/login/oauth",
    }


def test_deprecated_extensions_are_fallbacks_only():
    cert = _synthetic(
        {
            1: b"https://old.example",
            2: b"push",
            3: b"1" * 40,
            6: b"refs/heads/old",
            8: _utf8("https://new.example"),
        }
    )
    ext = fulcio_extensions(cert)
    assert ext["issuer"] == "https://new.example"
    assert ext["github_workflow_issuer"] == "https://old.example"
    assert ext["build_trigger"] == "push"
    assert ext["source_repository_digest"] == "1" * 40
    assert ext["source_repository_ref"] == "refs/heads/old"


@pytest.mark.parametrize(
    ("length_bytes", "size"),
    [(b"\x81\x80", 128), (b"\x81\xff", 255), (b"\x82\x01\x2c", 300), (b"\x82\x10\x00", 4096)],
)
def test_long_form_der_lengths(length_bytes, size):
    value = "https://github.com/o/r/" + "x" * (size - 23)
    data = value.encode()
    assert len(data) == size
    cert = _synthetic({9: b"\x0c" + length_bytes + data, 23: _utf8("production")})
    ext = fulcio_extensions(cert)
    assert ext["build_signer_uri"] == value
    assert ext["deployment_environment"] == "production"


def test_utf8_content_is_decoded():
    cert = _synthetic({20: bytes([0x0C, 6]) + "déjà".encode()})
    assert fulcio_extensions(cert)["build_trigger"] == "déjà"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x13\x03abc",  # PrintableString, not UTF8String
        b"\x0c\x04abc",  # length beyond the content
        b"\x0c\x02abc",  # trailing bytes
        b"\x0c\x80abc",  # indefinite length
        b"\x0c\x82\x00",  # long form cut short
        b"\x0c",  # no length at all
        b"\x0c\x02\xff\xfe",  # not UTF-8
    ],
)
def test_malformed_extension_is_an_identity_error(raw):
    with pytest.raises(IdentityError, match=r"1\.3\.6\.1\.4\.1\.57264\.1\.12"):
        fulcio_extensions(_synthetic({12: raw}))


def test_san_needs_a_uri_or_email():
    assert san(_synthetic({}, uri=None, email="me@example.com")) == "me@example.com"
    assert san(_synthetic({}, uri="https://x/y", email="me@example.com")) == "https://x/y"
    with pytest.raises(IdentityError, match="no subject alternative name"):
        san(_synthetic({}, uri=None))


# -- the policy: owner and repository -------------------------------------------------------


def test_owner_and_repo_pass_ignoring_case():
    cert = _cert(PUBLIC_GOOD)
    IdentityPolicy(owner="actions").check(cert)
    IdentityPolicy(owner="Actions").check(cert)
    IdentityPolicy(repository="actions/attest-build-provenance").check(cert)
    IdentityPolicy(repository="Actions/Attest-Build-Provenance").check(cert)
    IdentityPolicy(owner="actions").check(_cert(GITHUB_INSTANCE))


def test_other_owner_fails_on_the_san():
    with pytest.raises(IdentityError) as caught:
        IdentityPolicy(owner="sigstore").check(_cert(PUBLIC_GOOD))
    assert caught.value.field == "SAN"
    assert caught.value.found == PROBER_SAN
    assert caught.value.expected == r"(?i)^https://github\.com/sigstore/"


def test_owner_prefix_is_not_the_owner():
    # "action" is a prefix of "actions": the trailing slash of gh's regex rules it out.
    with pytest.raises(IdentityError, match="SAN"):
        IdentityPolicy(owner="action").check(_cert(PUBLIC_GOOD))
    with pytest.raises(IdentityError, match="SAN"):
        IdentityPolicy(repository="actions/attest-build").check(_cert(PUBLIC_GOOD))


def test_other_repo_fails():
    with pytest.raises(IdentityError) as caught:
        IdentityPolicy(repository="actions/checkout").check(_cert(PUBLIC_GOOD))
    assert caught.value.field == "SAN"


def test_repo_is_checked_against_the_source_repository_too():
    # The signer workflow lives in the right place, the source repository is another one.
    policy = IdentityPolicy(
        repository="actions/checkout", signer_repository="actions/attest-build-provenance"
    )
    with pytest.raises(IdentityError) as caught:
        policy.check(_cert(PUBLIC_GOOD))
    assert caught.value.field == "source_repository_uri"
    assert caught.value.expected == "https://github.com/actions/checkout"
    assert caught.value.found == "https://github.com/actions/attest-build-provenance"
    assert "source_repository_uri" in caught.value.message


def test_owner_uri_is_always_checked():
    # A SAN regex that lets anything through still leaves the owner to match.
    with pytest.raises(IdentityError) as caught:
        IdentityPolicy(owner="sigstore", san_regex=".*").check(_cert(PUBLIC_GOOD))
    assert caught.value.field == "source_repository_owner_uri"
    assert caught.value.expected == "https://github.com/sigstore"
    assert caught.value.found == "https://github.com/actions"


# -- the policy: reusable workflows ---------------------------------------------------------


def test_reusable_workflow_fails_with_the_callers_repo_alone_like_gh():
    cert = _cert(REUSABLE)
    for policy in (
        IdentityPolicy(repository="malancas/attest-demo"),
        IdentityPolicy(owner="malancas"),
    ):
        with pytest.raises(IdentityError) as caught:
            policy.check(cert)
        assert caught.value.field == "SAN"
        assert caught.value.found == REUSABLE_SAN
        assert caught.value.hint is not None
        assert "--signer-repo" in caught.value.hint


def test_reusable_workflow_passes_with_signer_repo_or_workflow():
    cert = _cert(REUSABLE)
    IdentityPolicy(
        repository="malancas/attest-demo",
        signer_repository="github/artifact-attestations-workflows",
    ).check(cert)
    IdentityPolicy(
        owner="malancas",
        signer_workflow="github/artifact-attestations-workflows/.github/workflows/attest.yml",
    ).check(cert)
    IdentityPolicy(
        repository="malancas/attest-demo",
        signer_workflow="github.com/github/artifact-attestations-workflows/.github/workflows/",
    ).check(cert)
    IdentityPolicy(repository="malancas/attest-demo", san=REUSABLE_SAN).check(cert)


def test_reusable_workflow_with_the_wrong_signer_fails():
    cert = _cert(REUSABLE)
    with pytest.raises(IdentityError, match="SAN"):
        IdentityPolicy(
            repository="malancas/attest-demo", signer_repository="github/other-workflows"
        ).check(cert)
    with pytest.raises(IdentityError, match="SAN"):
        IdentityPolicy(
            repository="malancas/attest-demo",
            signer_workflow="github/artifact-attestations-workflows/.github/workflows/build.yml",
        ).check(cert)
    with pytest.raises(IdentityError, match="SAN"):
        IdentityPolicy(repository="malancas/attest-demo", san=REUSABLE_SAN + "x").check(cert)


def test_signer_owner_is_not_the_source_owner():
    # --owner github matches the SAN (the workflow lives in github/…) but not the source.
    with pytest.raises(IdentityError) as caught:
        IdentityPolicy(owner="github").check(_cert(REUSABLE))
    assert caught.value.field == "source_repository_owner_uri"


# -- the policy: signer workflow ------------------------------------------------------------


@pytest.mark.parametrize(
    "workflow",
    [
        "actions/attest-build-provenance/.github/workflows/prober.yml",
        "github.com/actions/attest-build-provenance/.github/workflows/prober.yml",
        "https://github.com/actions/attest-build-provenance/.github/workflows/prober.yml",
        "actions/attest-build-provenance/.github/workflows/prober.yml@refs/heads/main",
        "actions/attest-build-provenance/.github/workflows/prober.yml@refs/heads/.*",
    ],
)
def test_signer_workflow_matches_as_a_prefix(workflow):
    IdentityPolicy(owner="actions", signer_workflow=workflow).check(_cert(PUBLIC_GOOD))


@pytest.mark.parametrize(
    "workflow",
    [
        "actions/attest-build-provenance/.github/workflows/release.yml",
        "actions/attest-build-provenance/.github/workflows/prober.yml@refs/heads/dev",
        "gitlab.com/actions/attest-build-provenance/.github/workflows/prober.yml",
        # Case matters here: gh's signer-workflow regex has no (?i).
        "actions/Attest-Build-Provenance/.github/workflows/prober.yml",
    ],
)
def test_signer_workflow_mismatch(workflow):
    with pytest.raises(IdentityError) as caught:
        IdentityPolicy(owner="actions", signer_workflow=workflow).check(_cert(PUBLIC_GOOD))
    assert caught.value.field == "SAN"
    assert caught.value.hint is None


def test_signer_workflow_regex_uses_the_hostname():
    policy = IdentityPolicy(owner="o", signer_workflow="o/r/.github/workflows/w.yml")
    assert policy.expected_san_regex == "^https://github.com/o/r/.github/workflows/w.yml"
    policy = IdentityPolicy(
        owner="o", signer_workflow="o/r/.github/workflows/w.yml", hostname="acme.ghe.com"
    )
    assert policy.expected_san_regex == "^https://acme.ghe.com/o/r/.github/workflows/w.yml"
    policy = IdentityPolicy(owner="o", signer_workflow="example.com/o/r/w.yml")
    assert policy.expected_san_regex == "^https://example.com/o/r/w.yml"


# -- the policy: issuer ---------------------------------------------------------------------


def test_custom_enterprise_issuer_fails_by_default_with_a_hint():
    with pytest.raises(IdentityError) as caught:
        IdentityPolicy(owner="too-legit").check(_cert(CUSTOM_ISSUER))
    error = caught.value
    assert error.field == "issuer"
    assert error.expected == GITHUB_ISSUER
    assert error.found == "https://token.actions.githubusercontent.com/hammer-time"
    assert error.hint is not None
    assert "--cert-oidc-issuer" in error.hint


def test_custom_enterprise_issuer_passes_when_given():
    issuer = "https://token.actions.githubusercontent.com/hammer-time"
    IdentityPolicy(owner="too-legit", issuer=issuer).check(_cert(CUSTOM_ISSUER))
    IdentityPolicy(repository="too-legit/attest", issuer=issuer.upper()).check(_cert(CUSTOM_ISSUER))
    # …and then the default issuer no longer passes.
    with pytest.raises(IdentityError, match="issuer"):
        IdentityPolicy(owner="actions", issuer=issuer).check(_cert(PUBLIC_GOOD))


def test_unrelated_issuer_fails_without_the_hint():
    with pytest.raises(IdentityError) as caught:
        IdentityPolicy(owner="actions", issuer="https://accounts.google.com").check(
            _cert(PUBLIC_GOOD)
        )
    assert caught.value.field == "issuer"
    assert caught.value.hint is None


def test_tenant_host_changes_urls_and_default_issuer():
    policy = IdentityPolicy(repository="o/r", hostname="acme.ghe.com")
    assert policy.tenant == "acme"
    assert policy.expected_issuer == "https://token.actions.acme.ghe.com"
    assert policy.expected_san_regex == r"(?i)^https://acme\.ghe\.com/o/r/"
    cert = _synthetic(
        {
            8: _utf8("https://token.actions.acme.ghe.com"),
            12: _utf8("https://acme.ghe.com/o/r"),
            16: _utf8("https://acme.ghe.com/o"),
        },
        uri="https://acme.ghe.com/o/r/.github/workflows/w.yml@refs/heads/main",
    )
    policy.check(cert)
    with pytest.raises(IdentityError, match="SAN"):
        IdentityPolicy(repository="o/r").check(cert)
    # An explicit issuer is taken as given, tenant or not.
    with pytest.raises(IdentityError, match="issuer"):
        IdentityPolicy(repository="o/r", hostname="acme.ghe.com", issuer="https://x").check(cert)


# -- the policy: digests, ref, runner -------------------------------------------------------


def test_source_ref_source_digest_and_signer_digest():
    cert = _cert(REUSABLE)
    base = {
        "repository": "malancas/attest-demo",
        "signer_repository": "github/artifact-attestations-workflows",
    }
    IdentityPolicy(
        **base,
        source_ref="refs/heads/main",
        source_digest="95baf27389e83e6a5c48f42e190d48d7abcea19e",
        signer_digest="09B495C3F12C7881B3CC17209A327792065C1A1D",
    ).check(cert)
    for field, value, name in (
        ("source_ref", "refs/heads/dev", "source_repository_ref"),
        ("source_digest", "0" * 40, "source_repository_digest"),
        # The caller's commit is not the signer workflow's.
        ("signer_digest", "95baf27389e83e6a5c48f42e190d48d7abcea19e", "build_signer_digest"),
    ):
        with pytest.raises(IdentityError) as caught:
            IdentityPolicy(**base, **{field: value}).check(cert)
        assert caught.value.field == name
        assert caught.value.expected == value


def test_deny_self_hosted_runners():
    IdentityPolicy(owner="actions", deny_self_hosted_runners=True).check(_cert(PUBLIC_GOOD))
    self_hosted = _github_cert(runner_environment="self-hosted")
    IdentityPolicy(owner="o").check(self_hosted)
    with pytest.raises(IdentityError) as caught:
        IdentityPolicy(owner="o", deny_self_hosted_runners=True).check(self_hosted)
    assert caught.value.field == "runner_environment"
    assert caught.value.found == "self-hosted"


def test_missing_extensions_fail():
    cert = _synthetic({8: _utf8(GITHUB_ISSUER)})
    with pytest.raises(IdentityError) as caught:
        IdentityPolicy(owner="o").check(cert)
    assert caught.value.field == "source_repository_owner_uri"
    assert caught.value.found == ""


def test_message_names_field_expected_and_found():
    with pytest.raises(IdentityError) as caught:
        IdentityPolicy(owner="o", source_ref="refs/tags/v1").check(_github_cert())
    assert caught.value.message == (
        "certificate source_repository_ref: expected 'refs/tags/v1', found 'refs/heads/main'"
    )
    assert isinstance(caught.value, AttestError)


# -- the policy: arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "one of --owner or --repo"),
        ({"owner": "o", "repository": "o/r"}, "--owner and --repo"),
        ({"repository": "o"}, "--repo 'o'"),
        ({"repository": "o/r/x"}, "--repo 'o/r/x'"),
        ({"repository": "/r"}, "--repo '/r'"),
        ({"owner": "o/r"}, "--owner"),
        ({"owner": "o", "signer_repository": "x"}, "--signer-repo 'x'"),
        ({"owner": "o", "signer_repository": "a/b", "signer_workflow": "a/b/w"}, "together"),
        ({"owner": "o", "san": "x", "san_regex": "y"}, "--cert-identity and"),
        ({"owner": "o", "san_regex": "("}, "--cert-identity-regex"),
        ({"owner": "o", "signer_workflow": "o/r/["}, "--signer-workflow"),
        ({"owner": "o", "hostname": "https://github.com"}, "--hostname"),
        ({"owner": "o", "issuer": ""}, "--cert-oidc-issuer"),
    ],
)
def test_invalid_policies_are_usage_errors(kwargs, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("(", r"\(")):
        IdentityPolicy(**kwargs)


# -- for_workflow ---------------------------------------------------------------------------


def _prober_claims() -> dict[str, str]:
    return {
        "repository": "actions/attest-build-provenance",
        "repository_owner": "actions",
        "job_workflow_ref": (
            "actions/attest-build-provenance/.github/workflows/prober.yml@refs/heads/main"
        ),
        "job_workflow_sha": PROBER_SHA,
        "workflow_ref": (
            "actions/attest-build-provenance/.github/workflows/prober-public-good.yml"
            "@refs/heads/main"
        ),
        "ref": "refs/heads/main",
        "sha": PROBER_SHA,
    }


def test_for_workflow_is_the_exact_identity():
    policy = IdentityPolicy.for_workflow(
        _prober_claims(), server_url="https://github.com/", issuer=GITHUB_ISSUER
    )
    assert policy.san == PROBER_SAN
    assert policy.repository == "actions/attest-build-provenance"
    assert policy.source_ref == "refs/heads/main"
    assert policy.source_digest == PROBER_SHA
    assert policy.signer_digest == PROBER_SHA
    assert policy.hostname == "github.com"
    policy.check(_cert(PUBLIC_GOOD))
    # The same prober run signed on GitHub's instance too.
    policy.check(_cert(GITHUB_INSTANCE))


def test_for_workflow_rejects_another_run():
    claims = _prober_claims()
    # Same workflow, another commit (13581567 was signed from 268464dd…): the signer
    # digest is compared first, as gh does.
    with pytest.raises(IdentityError) as caught:
        IdentityPolicy.for_workflow(
            claims, server_url="https://github.com", issuer=GITHUB_ISSUER
        ).check(_cert("attest-build-provenance-13581567.sigstore.json"))
    assert caught.value.field == "build_signer_digest"
    assert caught.value.found == "268464dd14307f17143ddd8784cca15db03db05f"
    claims["job_workflow_ref"] = claims["job_workflow_ref"].replace("main", "dev")
    with pytest.raises(IdentityError, match="SAN"):
        IdentityPolicy.for_workflow(
            claims, server_url="https://github.com", issuer=GITHUB_ISSUER
        ).check(_cert(PUBLIC_GOOD))
    with pytest.raises(IdentityError, match="issuer"):
        IdentityPolicy.for_workflow(
            _prober_claims(), server_url="https://github.com", issuer="https://x.example"
        ).check(_cert(PUBLIC_GOOD))


def test_for_workflow_in_a_reusable_workflow():
    claims = {
        "repository": "malancas/attest-demo",
        "job_workflow_ref": (
            "github/artifact-attestations-workflows/.github/workflows/attest.yml"
            "@09b495c3f12c7881b3cc17209a327792065c1a1d"
        ),
        "job_workflow_sha": "09b495c3f12c7881b3cc17209a327792065c1a1d",
        "ref": "refs/heads/main",
        "sha": "95baf27389e83e6a5c48f42e190d48d7abcea19e",
    }
    policy = IdentityPolicy.for_workflow(
        claims, server_url="https://github.com", issuer=GITHUB_ISSUER
    )
    assert policy.san == REUSABLE_SAN
    policy.check(_cert(REUSABLE))


def test_for_workflow_custom_issuer_and_tenant():
    claims = {
        "repository": "too-legit/attest",
        "job_workflow_ref": "too-legit/attest/.github/workflows/integration.yml@refs/heads/main",
        "ref": "refs/heads/main",
        "sha": "283bf967fa3c591925dd25e6a6e8e781542117bf",
    }
    issuer = "https://token.actions.githubusercontent.com/hammer-time"
    policy = IdentityPolicy.for_workflow(claims, server_url="https://github.com", issuer=issuer)
    assert policy.signer_digest is None
    policy.check(_cert(CUSTOM_ISSUER))
    tenant = IdentityPolicy.for_workflow(
        claims, server_url="https://acme.ghe.com", issuer="https://token.actions.acme.ghe.com"
    )
    assert tenant.hostname == "acme.ghe.com"
    assert tenant.san == (
        "https://acme.ghe.com/too-legit/attest/.github/workflows/integration.yml@refs/heads/main"
    )
    assert tenant.expected_issuer == "https://token.actions.acme.ghe.com"


@pytest.mark.parametrize("missing", ["repository", "job_workflow_ref", "ref", "sha"])
def test_for_workflow_needs_the_claims(missing):
    claims = _prober_claims()
    del claims[missing]
    with pytest.raises(AttestError, match=f"no {missing} claim"):
        IdentityPolicy.for_workflow(claims, server_url="https://github.com", issuer=GITHUB_ISSUER)


def test_for_workflow_needs_a_server_host():
    with pytest.raises(AttestError, match="no host"):
        IdentityPolicy.for_workflow(_prober_claims(), server_url="github", issuer=GITHUB_ISSUER)
