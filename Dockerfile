# The action's container. Release builds pass PYTHON_IMAGE pinned by digest
# (.github/workflows/release.yml); requirements are installed by hash, binary wheels only.
ARG PYTHON_IMAGE=python:3.11-slim

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
