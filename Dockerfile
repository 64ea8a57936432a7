# The action's container: base image pinned by digest (the multi-platform index; Dependabot
# proposes updates, .github/dependabot.yml), requirements installed by hash, binary wheels only.
# python:3.11.16-slim (Debian trixie) as docker-library/repo-info recorded it on 2026-08-13.
ARG PYTHON_IMAGE=python:3.11.16-slim@sha256:8203f8b7cc03e7a0b2da2a7bfebdb7e39d985983791e2aba5b01cc535bf36f53

FROM ${PYTHON_IMAGE} AS build
COPY requirements/runtime.txt /src/requirements/runtime.txt
COPY attest /src/attest
COPY entrypoint.py /src/entrypoint.py
COPY scripts/build-runtime.sh /src/scripts/build-runtime.sh
RUN PIP_NO_CACHE_DIR=1 sh /src/scripts/build-runtime.sh /opt/attest python3

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/attest /opt/attest
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Exec form, Python directly and isolated (-I): a shell would drop INPUT_* variables whose
# names hold hyphens, and the job's PYTHON*/PATH settings must not reach the action.
ENTRYPOINT ["/opt/attest/bin/python", "-I", "/opt/attest/entrypoint.py"]
