#!/usr/bin/env bash
# Debian packages the tests start: distribution 2.8.2 (docker-registry) and htpasswd.
set -euo pipefail
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
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
