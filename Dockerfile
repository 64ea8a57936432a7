# The action's container. Base image pinning by digest and hashed requirements come with
# the release path (see README, "Container image").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY pyproject.toml README.md /src/
COPY attest /src/attest
RUN pip install /src && rm -rf /src
COPY entrypoint.py /entrypoint.py

# Exec form, Python directly: a shell would drop INPUT_* variables whose names hold hyphens.
ENTRYPOINT ["python", "/entrypoint.py"]
