from __future__ import annotations

import hashlib

from attest.oci.descriptor import Descriptor, canonical_json, digest_of, referrers_tag


def test_referrers_tag_for_sha256_is_the_digest_with_a_dash():
    digest = "sha256:" + "a1" * 32
    assert referrers_tag(digest) == "sha256-" + "a1" * 32


def test_referrers_tag_truncates_long_digests_to_a_valid_tag():
    # distribution-spec main: algorithm <= 32 chars, encoded <= 64 chars.
    tag = referrers_tag("sha512:" + "f" * 128)
    assert tag == "sha512-" + "f" * 64
    assert len(referrers_tag("a" * 40 + ":" + "b" * 200)) == 32 + 1 + 64


def test_referrers_tag_replaces_characters_tags_cannot_hold():
    assert referrers_tag("multihash+base58:QmA=b") == "multihash-base58-QmA-b"


def test_digest_is_of_exactly_the_serialised_bytes():
    data = canonical_json({"b": 1, "a": "é"})
    assert data == '{"b":1,"a":"é"}'.encode()
    assert digest_of(data) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert digest_of(data, "sha512") == "sha512:" + hashlib.sha512(data).hexdigest()


def test_descriptor_json_round_trip_and_malformed_entries():
    descriptor = Descriptor("m", "sha256:00", 3, "t", {"k": "v"})
    assert Descriptor.from_json(descriptor.to_json()) == descriptor
    assert descriptor.to_json() == {
        "mediaType": "m",
        "digest": "sha256:00",
        "size": 3,
        "artifactType": "t",
        "annotations": {"k": "v"},
    }
    assert Descriptor.from_json({"mediaType": "m", "digest": "d", "size": True}) is None
    assert Descriptor.from_json(["not", "a", "dict"]) is None
