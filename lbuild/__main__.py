"""``python -m lbuild`` and the ``lbuild`` command: a no-op package answered from its stamp, else the CLI."""

import sys


def main() -> None:
    from lbuild import stamp

    code = stamp.replay(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from lbuild.cli import run

    run()


if __name__ == "__main__":
    main()
