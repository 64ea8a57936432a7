# The action's container: base image pinned by digest, requirements installed by hash, binary
# wheels only. The base is python:3.11.16-slim (Debian trixie), its multi-platform index as
# docker-library/repo-info recorded it on 2026-08-13. It is named once, in a plain FROM line,
# so Dependabot (.github/dependabot.yml) can propose new digests: it does not read ARGs.
FROM python:3.11.16-slim@sha256:8203f8b7cc03e7a0b2da2a7bfebdb7e39d985983791e2aba5b01cc535bf36f53 AS base

FROM base AS build
COPY requirements/runtime.txt /src/requirements/runtime.txt
COPY attest /src/attest
COPY entrypoint.py /src/entrypoint.py
COPY scripts/build-runtime.sh /src/scripts/build-runtime.sh
RUN PIP_NO_CACHE_DIR=1 sh /src/scripts/build-runtime.sh /opt/attest python3

FROM base
COPY --from=build /opt/attest /opt/attest
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Exec form, Python directly and isolated (-I): a shell would drop INPUT_* variables whose
# names hold hyphens, and the job's PYTHON*/PATH settings must not reach the action.
ENTRYPOINT ["/opt/attest/bin/python", "-I", "/opt/attest/entrypoint.py"]
