"""``edgetrain generate``: write the accelerator's (or the engine tile's) Verilog, its
manifest and, for the accelerator, the host's C header and Python constants."""

from edgetrain.hw.config import load_config
from edgetrain.hw.generate import TOPS, generate
from edgetrain.progress import print_table
from ._args import add_config

HELP = ("write the accelerator's Verilog, DIR/manifest.json (ports, registers, ISA), a C "
        "header and Python constants; --top engine: the engine tile's Verilog and manifest")


def add_arguments(parser):
    add_config(parser)
    parser.add_argument("-o", "--out", metavar="DIR", required=True, help="output directory")
    parser.add_argument("--top", choices=list(TOPS), default="accelerator",
                        help="what to write: the whole accelerator (default) or the bare "
                             "conv engine tile")


def run(args):
    cfg = load_config(args.config)
    written = generate(cfg, args.out, top=args.top)
    print_table([[p["name"], p["dir"], p["width"]] for p in written.manifest["ports"]],
                ["port", "dir", "width"],
                title=f"{written.manifest['top']}: {cfg.tm}x{cfg.tn} conv engine")
    print("wrote " + ", ".join(str(p) for p in [written.verilog, *written.files]))
