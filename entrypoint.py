"""The container action's entry point: hand over to the attest CLI, which reports errors."""

import sys

from attest.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
