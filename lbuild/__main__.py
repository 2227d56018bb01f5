"""``python -m lbuild``."""

from lbuild.cli import run

if __name__ == "__main__":
    run()
