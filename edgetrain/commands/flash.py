"""``edgetrain flash``: program a board with a bitstream built for it."""

from edgetrain.boards.flash import flash_bitstream
from edgetrain.boards.platforms import BOARDS, get_board

HELP = "program a board (openFPGALoader / iceprog); refuses another board's bitstream"


def add_arguments(parser):
    parser.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    parser.add_argument("bitstream", help="bitstream file (report.json beside it is checked)")


def run(args):
    board = get_board(args.board)
    digest = flash_bitstream(board, args.bitstream)
    print(f"programmed {board.name} with {args.bitstream} (sha256 {digest[:16]})")
