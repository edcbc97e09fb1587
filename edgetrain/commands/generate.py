"""``edgetrain generate``: write the accelerator's Verilog and a manifest of its top."""

from edgetrain.hw.config import load_config
from edgetrain.hw.generate import TOP, generate_engine
from edgetrain.progress import print_table
from ._args import add_config

HELP = "write the Verilog of the engine and DIR/manifest.json (ports, configuration)"


def add_arguments(parser):
    add_config(parser)
    parser.add_argument("-o", "--out", metavar="DIR", required=True, help="output directory")


def run(args):
    cfg = load_config(args.config)
    src, manifest_path, manifest = generate_engine(cfg, args.out)
    print_table([[p["name"], p["dir"], p["width"]] for p in manifest["ports"]],
                ["port", "dir", "width"], title=f"{TOP}: {cfg.tm}x{cfg.tn} conv engine")
    print(f"wrote {src} and {manifest_path}")
