from __future__ import annotations

import base64

from attest.oci.auth import Challenge, basic_header, parse_challenges, repository_scope


def test_docker_hub_bearer_challenge():
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/alpine:pull,push"'
    )
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/alpine:pull,push",
            },
        )
    ]


def test_several_challenges_unquoted_values_and_escapes():
    header = 'Basic realm="a \\"quoted\\" realm", Bearer realm=https://t.example/token,service=s'
    assert parse_challenges(header) == [
        Challenge("basic", {"realm": 'a "quoted" realm'}),
        Challenge("bearer", {"realm": "https://t.example/token", "service": "s"}),
    ]


def test_empty_and_scheme_only_challenges():
    assert parse_challenges("") == []
    assert parse_challenges("Basic") == [Challenge("basic", {})]


def test_scopes_and_basic_header():
    assert repository_scope("o/app", push=False) == "repository:o/app:pull"
    assert repository_scope("o/app", push=True) == "repository:o/app:pull,push"
    assert base64.b64decode(basic_header("u", "p:w").split()[1]) == b"u:p:w"
