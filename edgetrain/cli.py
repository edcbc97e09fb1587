"""The ``edgetrain`` command line: one sub-command per module in ``edgetrain.commands``.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args)``
(returning an exit code or None). Commands with targets (``sim engine``, ``bench dma``) live
in modules named ``<command>_<target>``. Only modules that exist are listed, so ``--help``
shows what works.
"""

import argparse
import importlib
import importlib.util
import sys

from .errors import EdgetrainError

COMMANDS = ("train", "generate", "build", "flash")
TARGETED = {
    "sim": ("engine", "units", "edram", "dma", "bridge"),
    "bench": ("train", "engine", "units", "refresh", "dma"),
}


def _available(module):
    return importlib.util.find_spec(f"edgetrain.commands.{module}") is not None


def _add(subparsers, name, module):
    mod = importlib.import_module(f"edgetrain.commands.{module}")
    p = subparsers.add_parser(name, help=mod.HELP, description=mod.HELP)
    mod.add_arguments(p)
    p.set_defaults(_run=mod.run)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="edgetrain",
        description="Generate, verify and deploy on-device CNN training accelerators.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMANDS:
        if _available(name):
            _add(sub, name, name)
    for name, targets in TARGETED.items():
        present = [t for t in targets if _available(f"{name}_{t}")]
        if not present:
            continue
        p = sub.add_parser(name, help=f"{name} one of: {', '.join(present)}")
        tsub = p.add_subparsers(title="targets", metavar="TARGET", required=True)
        for t in present:
            _add(tsub, t, f"{name}_{t}")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        code = args._run(args)
    except EdgetrainError as e:
        print(f"edgetrain: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgetrain: interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else code


def console_main():
    sys.exit(main())


if __name__ == "__main__":
    console_main()
