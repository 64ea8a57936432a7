#!/usr/bin/env bash
# Debian packages the tests use: distribution 2.8.2 (docker-registry), htpasswd, bubblewrap.
set -euo pipefail
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
# bubblewrap mounts the runner's /github/... directories for the container-contract test.
command -v bwrap >/dev/null || missing+=(bubblewrap)
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# The package's own service must not start: the tests run their own instances.
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
