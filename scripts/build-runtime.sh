#!/bin/sh
# Builds the action's runtime into DEST: a virtual environment without pip holding exactly
# the hashed requirements (binary wheels only) and the attest package, plus entrypoint.py.
# The Dockerfile runs this; tests run it too, so the image's Python layer is tested here.
#   scripts/build-runtime.sh DEST [PYTHON]
set -eu
dest=$1
python=${2:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)

"$python" -m venv --without-pip "$dest"
"$python" -m pip --python "$dest/bin/python" install --quiet \
  --disable-pip-version-check --require-hashes --no-deps --only-binary=:all: \
  -r "$root/requirements/runtime.txt"
site=$("$dest/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# The package itself is copied, not built: no build tools in the image.
cp -R "$root/attest" "$site/attest"
find "$site/attest" -name '__pycache__' -prune -exec rm -rf {} +
cp "$root/entrypoint.py" "$dest/entrypoint.py"
"$dest/bin/python" -I -c 'import attest.cli, attest.signing'
