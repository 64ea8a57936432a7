from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from attest.config import INPUT_DEFAULTS, Config, Inputs, Mode, action_inputs
from attest.errors import UsageError
from attest.github_api import api_base
from attest.oci.referrers import ReferrersMode

ACTION = yaml.safe_load((Path(__file__).resolve().parents[2] / "action.yml").read_text())


def test_action_yml_declares_exactly_our_inputs_with_the_same_defaults():
    declared = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    assert list(declared) == list(INPUT_DEFAULTS)
    expected = dict(INPUT_DEFAULTS, **{"github-token": "${{ github.token }}"})
    assert declared == expected


def test_action_yml_outputs_are_the_anchors_plus_ours():
    assert list(ACTION["outputs"]) == [
        "bundle-path",
        "attestation-id",
        "attestation-url",
        "storage-record-ids",
        "attestation-manifest-digests",
        "referrers-modes",
        "cleanup-plan",
    ]
    assert ACTION["runs"]["using"] == "docker"


def test_inputs_are_read_with_hyphens_kept_and_values_trimmed():
    environ = {
        "INPUT_SUBJECT-PATH": "  dist/*  ",
        "INPUT_PUSH-TO-REGISTRY": "True",
        "INPUT_SHOW_SUMMARY": "false",  # the underscore form some launchers use
        "INPUT_REFERRERS-MODE": "TAG",
        "INPUT_PLAIN-HTTP-REGISTRIES": "reg.lan:5000, other.lan\nthird.lan",
        "INPUT_GITHUB-TOKEN": "ghs_x",
        "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_ACTIONS": "true",
    }
    config = Config.from_environ(environ, cwd=Path("/elsewhere"))
    inputs = config.inputs
    assert inputs.subject_path == "dist/*"
    assert inputs.push_to_registry is True
    assert inputs.show_summary is False
    assert inputs.create_storage_record is True
    assert inputs.referrers_mode is ReferrersMode.TAG
    assert inputs.plain_http_registries == {"reg.lan:5000", "other.lan", "third.lan"}
    assert config.runtime.workspace == Path("/github/workspace")
    assert config.runtime.in_actions
    assert "ghs_x" not in repr(config)


def test_runtime_defaults_outside_actions(tmp_path):
    config = Config.from_environ({"HOME": str(tmp_path)}, cwd=tmp_path)
    assert config.runtime.workspace == tmp_path
    assert config.runtime.server_url == "https://github.com"
    assert config.runtime.credential_sources.docker_config == tmp_path / ".docker" / "config.json"
    assert not config.runtime.in_actions


@pytest.mark.parametrize(
    ("environ", "api"),
    [
        ({}, "https://api.github.com"),
        ({"GITHUB_SERVER_URL": "https://octo.ghe.com"}, "https://api.octo.ghe.com"),
        (
            {
                "GITHUB_SERVER_URL": "https://octo.ghe.com",
                "GITHUB_API_URL": "https://api.x.ghe.com/",
            },
            "https://api.x.ghe.com",
        ),
    ],
)
def test_the_api_root_comes_from_the_server_unless_given(tmp_path, environ, api):
    runtime = Config.from_environ({"HOME": str(tmp_path), **environ}, cwd=tmp_path).runtime
    assert api_base(runtime.api_url, runtime.server_url) == api


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        ({}, Mode.PROVENANCE),
        ({"sbom-path": "sbom.json"}, Mode.SBOM),
        ({"predicate-type": "https://x", "predicate": "{}"}, Mode.CUSTOM),
        ({"predicate-type": "https://x", "predicate-path": "p.json"}, Mode.CUSTOM),
    ],
)
def test_mode(raw, mode):
    assert Inputs.parse(raw).mode is mode


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"push-to-registry": "yes"}, "push-to-registry: 'yes' is not a boolean"),
        ({"show-summary": "1"}, "show-summary: '1' is not a boolean"),
        ({"create-storage-record": "on"}, "create-storage-record: 'on' is not a boolean"),
        ({"private-signing": "maybe"}, "private-signing: 'maybe' is not a boolean"),
        ({"referrers-mode": "both"}, "referrers-mode: 'both' is not one of auto, api, tag"),
        (
            {"sbom-path": "s", "predicate-type": "t"},
            "Cannot specify sbom-path together with predicate-type, predicate, or predicate-path",
        ),
        ({"predicate": "{}"}, "predicate-type is required when using predicate or predicate-path"),
        (
            {"predicate-type": "t", "predicate": "{}", "predicate-path": "p"},
            "Only one of predicate-path or predicate may be provided",
        ),
        ({"predicate-type": "t"}, "One of predicate-path or predicate must be provided"),
        ({"registry-username": "u"}, "registry-username and registry-password"),
        ({"plain-http-registries": "http://x"}, "plain-http-registries: 'http://x' must be a host"),
    ],
)
def test_bad_inputs_name_the_input(raw, message):
    with pytest.raises(UsageError) as info:
        Inputs.parse(raw)
    assert message in info.value.message


def test_private_signing_accepts_the_anchors_1():
    assert Inputs.parse({"private-signing": "1"}).private_signing
    assert not Inputs.parse({}).private_signing


def test_registry_inputs_serve_every_registry_of_the_run():
    inputs = Inputs.parse({"registry-username": "actor", "registry-password": "pw"})
    config = Config(inputs, Config.from_environ({}, cwd=Path("/")).runtime)
    store = config.registry.credential_store()
    assert store.get("ghcr.io") is not None
    assert store.get("ghcr.io").username == "actor"  # type: ignore[union-attr]


def test_action_inputs_ignores_unrelated_variables():
    assert action_inputs({"INPUT_SUBJECT-NAME": "x", "INPUT_OTHER": "y", "PATH": "/bin"}) == {
        "subject-name": "x"
    }
