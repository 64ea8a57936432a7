#!/usr/bin/env bash
# Install the registry/CLI tools used by the integration tests into
# ${ATTEST_TOOLS_DIR:-$HOME/.cache/attest-tools}/bin.
#
# Idempotent: each tool has a stamp file recording what was built (the module version, or for
# the local Go program a hash of its sources); a tool whose binary exists and whose stamp
# matches is not rebuilt. Requires `go` on PATH. Prints one line per tool: "<tool>: cached" or
# "<tool>: built".
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
tools_dir="${ATTEST_TOOLS_DIR:-${HOME}/.cache/attest-tools}"
bin_dir="${tools_dir}/bin"
stamp_dir="${tools_dir}/stamps"
mkdir -p "${bin_dir}" "${stamp_dir}"
work_dir="$(mktemp -d "${tools_dir}/tmp.XXXXXX")"
trap 'rm -rf "${work_dir}"' EXIT

if ! command -v go >/dev/null 2>&1; then
  echo "install-tools.sh: 'go' is not on PATH" >&2
  exit 1
fi

# is_cached NAME STAMP: true when the binary exists and its stamp file holds STAMP.
is_cached() {
  local name="$1" stamp="$2"
  [[ -x "${bin_dir}/${name}" && -f "${stamp_dir}/${name}" ]] \
    && [[ "$(cat "${stamp_dir}/${name}")" == "${stamp}" ]]
}

# finish NAME STAMP TMPBIN: move the freshly built binary in place and write its stamp.
finish() {
  local name="$1" stamp="$2" tmpbin="$3"
  if [[ ! -x "${tmpbin}/${name}" ]]; then
    echo "install-tools.sh: build of ${name} produced no binary" >&2
    exit 1
  fi
  mv -f "${tmpbin}/${name}" "${bin_dir}/${name}.new"
  mv -f "${bin_dir}/${name}.new" "${bin_dir}/${name}"
  printf '%s\n' "${stamp}" >"${stamp_dir}/${name}.new"
  mv -f "${stamp_dir}/${name}.new" "${stamp_dir}/${name}"
  echo "${name}: built"
}

# go_install NAME MODULE VERSION PACKAGE: `go install PACKAGE@VERSION` into a temporary GOBIN.
# `go install pkg@version` looks up the module's latest version (to report deprecation) and
# fails when the module proxy refuses to list versions (a filtered mirror answers the
# `@v/list` request with 403 for olareg). In that case, build the same package from a
# throwaway module that requires exactly MODULE@VERSION: with the tool module as its only
# requirement, minimal version selection picks the same dependency versions as the tool's own
# go.mod (and `go install pkg@version` refuses tool modules with replace directives anyway).
go_install() {
  local name="$1" module="$2" version="$3" pkg="$4"
  local stamp="${pkg}@${version}"
  if is_cached "${name}" "${stamp}"; then
    echo "${name}: cached"
    return
  fi
  local tmpbin="${work_dir}/${name}"
  mkdir -p "${tmpbin}"
  if ! GOBIN="${tmpbin}" CGO_ENABLED=0 go install "${pkg}@${version}" 2>"${tmpbin}/install.log"; then
    echo "${name}: 'go install ${pkg}@${version}' failed; building from a wrapper module:" >&2
    sed 's/^/    /' "${tmpbin}/install.log" >&2
    mkdir "${tmpbin}/mod"
    printf 'module attest.tools/build\n\ngo 1.22\n\nrequire %s %s\n' "${module}" "${version}" \
      >"${tmpbin}/mod/go.mod"
    (cd "${tmpbin}/mod" && CGO_ENABLED=0 GOWORK=off go build -mod=mod -o "${tmpbin}/${name}" "${pkg}")
  fi
  finish "${name}" "${stamp}" "${tmpbin}"
}

# go_build_local NAME DIR: build the main package in DIR (relative to the repo root).
go_build_local() {
  local name="$1" dir="${repo_root}/$2"
  local stamp
  stamp="$(cd "${dir}" && cat main.go go.mod go.sum | sha256sum | cut -d' ' -f1)"
  if is_cached "${name}" "${stamp}"; then
    echo "${name}: cached"
    return
  fi
  local tmpbin="${work_dir}/${name}"
  mkdir -p "${tmpbin}"
  (cd "${dir}" && CGO_ENABLED=0 GOWORK=off go build -o "${tmpbin}/${name}" .)
  finish "${name}" "${stamp}" "${tmpbin}"
}

go_install olareg github.com/olareg/olareg v0.2.2 github.com/olareg/olareg/cmd/olareg
go_install oras oras.land/oras v1.3.6 oras.land/oras/cmd/oras
go_install regctl github.com/regclient/regclient v0.11.5 github.com/regclient/regclient/cmd/regctl
# v2.1.3: the newest timestamp-authority whose go.mod accepts Go 1.26 (v2.1.4+ require 1.27).
go_install timestamp-server github.com/sigstore/timestamp-authority/v2 v2.1.3 \
  github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server
# cosign cross-checks our bundles (verify-blob-attestation --new-bundle-format).
go_install cosign github.com/sigstore/cosign/v3 v3.1.2 github.com/sigstore/cosign/v3/cmd/cosign
go_build_local referrers-no-header tests/registries/referrers-no-header
