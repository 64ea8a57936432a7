"""attest: SLSA provenance attestations for artifacts and container images, signed with Sigstore."""

__version__ = "0.1.0"
