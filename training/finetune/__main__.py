"""``python -m training.finetune ...``: the same as ``python -m training finetune ...`` (what the plugin starts)."""

from __future__ import annotations

import argparse
import logging
import sys

from lcgan_qgis.core.errors import LcganError

from .cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.finetune", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return run(args)
    except LcganError as exc:
        logging.getLogger("training.finetune").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
