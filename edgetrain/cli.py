"""The ``edgetrain`` command line: one sub-command per module in ``edgetrain.commands``.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args)``
(returning an exit code or None): it parses, calls one function of the package and prints
the result. Commands with targets (``sim engine``, ``bench update-lanes``) live in modules
named ``<command>_<target>`` (dashes as underscores). Only modules that exist are listed, so
``--help`` shows what works; a command whose module needs a package of an extra that is not
installed (amaranth-boards, say) stays listed and says so when run. A bad argument or a user
error ends with one line on stderr and exit code 2.
"""

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import sys

from .errors import EdgetrainError, ToolError

COMMANDS = ("train", "plan", "generate", "build", "flash")
TARGETED = {
    "sim": ("engine", "units", "edram", "dma", "bridge", "accel"),
    "bench": ("train", "engine", "update-lanes", "units", "synth-units", "synth-engine",
              "refresh", "dma", "boards", "accel"),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as the commands' own errors are."""

    def error(self, message):
        self.exit(2, f"edgetrain: error: {message} (see `{self.prog} --help`)\n")


def _module(command, target=None):
    return command if target is None else f"{command}_{target.replace('-', '_')}"


def _available(module):
    return importlib.util.find_spec(f"edgetrain.commands.{module}") is not None


def _add(subparsers, name, module):
    try:
        mod = importlib.import_module(f"edgetrain.commands.{module}")
    except ModuleNotFoundError as e:
        if e.name.split(".")[0] == "edgetrain":
            raise
        _add_missing(subparsers, name, e.name)
        return
    p = subparsers.add_parser(name, help=mod.HELP, description=mod.HELP)
    mod.add_arguments(p)
    p.set_defaults(_run=mod.run)


def _add_missing(subparsers, name, missing):
    """Add command ``name`` whose module needs ``missing``, a package of an extra that is not
    installed: it takes any arguments and ends with one line naming the fix."""
    why = f"needs {missing}, which is not installed: pip install 'edgetrain[sim,boards,plot]'"
    p = subparsers.add_parser(name, help=f"(not available: {why})")

    def run(args):
        raise ToolError(f"{p.prog} {why}")
    p.set_defaults(_run=run, _any_arguments=True)


def build_parser():
    """Return the parser of every available command."""
    parser = _Parser(
        prog="edgetrain",
        description="Generate, verify and deploy on-device CNN training accelerators.")
    parser.add_argument("--version", action="version",
                        version=f"edgetrain {importlib.metadata.version('edgetrain')}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMANDS:
        if _available(_module(name)):
            _add(sub, name, _module(name))
    for name, targets in TARGETED.items():
        present = [t for t in targets if _available(_module(name, t))]
        if not present:
            continue
        p = sub.add_parser(name, help=f"{name} one of: {', '.join(present)}")
        tsub = p.add_subparsers(title="targets", metavar="TARGET", required=True)
        for t in present:
            _add(tsub, t, _module(name, t))
    return parser


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown and not getattr(args, "_any_arguments", False):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as e:          # --help, --version, or a bad argument
        return e.code
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
    except BrokenPipeError:
        # The reader of stdout went away (`edgetrain ... | head`): stop quietly, and keep
        # the interpreter's final flush from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0 if code is None else code


def console_main():
    sys.exit(main())


if __name__ == "__main__":
    console_main()
