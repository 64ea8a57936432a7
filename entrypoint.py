"""The container action's entry point: the CLI's `run`, which reads the INPUT_* variables."""

import sys

from attest.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
