"""The framed host bridge: registers, memory blocks, start and status over a byte stream.

Frames (all multi-byte fields little-endian except the CRC, which is sent high byte first)::

    request   A5  cmd  addr0 addr1 addr2 addr3  count  payload...  crc_hi crc_lo
    response  5A  cmd  status  len_lo  len_hi  payload...  crc_hi crc_lo

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection) over
every byte between the sync byte and the CRC. A request's payload length follows from its
command: ``WRITE_REG`` carries one 32-bit word (4 bytes), ``WRITE_MEM`` carries ``count``
memory words of ``ceil(mem_data_bits / 8)`` bytes, the others none. ``count`` is 1 for the
register commands, 1..``max_words`` for the memory commands and ignored otherwise.

The bridge answers every frame it saw start, exactly once, with the ``Status`` of the frame;
a response carries a payload only when its status is ``OK``: 4 bytes for ``READ_REG`` and
``STATUS``, ``count`` memory words for ``READ_MEM``. A ``WRITE_MEM`` payload is staged and
only written to memory once the CRC has checked. Bytes outside a frame are ignored until the
next sync byte, so the bridge resynchronises after garbage; a frame whose bytes stop arriving
for ``timeout_cycles`` is answered with ``TIMEOUT``.
"""

from amaranth.hdl import Module, Signal, Cat, Const, Mux
from amaranth.lib import enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.memport import MemoryPortSignature

__all__ = ["REQUEST_SYNC", "RESPONSE_SYNC", "Command", "Status", "HostBridge",
           "crc16_step", "word_bytes"]

REQUEST_SYNC = 0xA5
RESPONSE_SYNC = 0x5A
CRC16_POLY, CRC16_INIT = 0x1021, 0xFFFF


class Command(enum.Enum, shape=8):
    """Request commands."""
    READ_REG = 0x01
    WRITE_REG = 0x02
    READ_MEM = 0x03
    WRITE_MEM = 0x04
    START = 0x05
    STATUS = 0x06


class Status(enum.Enum, shape=3):
    """Response status codes; also the bridge's ``last_error``."""
    OK = 0
    BAD_CRC = 1
    UNKNOWN_COMMAND = 2
    BAD_LENGTH = 3
    BAD_ADDRESS = 4
    TIMEOUT = 5


def word_bytes(data_bits):
    """Return the number of frame bytes that carry one ``data_bits`` memory word."""
    return (data_bits + 7) // 8


def crc16_step(crc, byte):
    """Return the CRC-16/CCITT-FALSE ``crc`` (a 16-bit Amaranth value) updated with ``byte``."""
    bits = [crc[i] for i in range(16)]
    for i in reversed(range(8)):
        feedback = bits[15] ^ byte[i]
        shifted = [Const(0, 1)] + bits[:15]
        bits = [shifted[j] ^ feedback if (CRC16_POLY >> j) & 1 else shifted[j]
                for j in range(16)]
    return Cat(*bits)


def _check_int(name, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], not {value!r}")
    return value


class HostBridge(wiring.Component):
    """Serve framed host requests arriving on ``rx`` and answer them on ``tx``.

    Parameters (keyword-only): ``reg_count`` registers of 32 bits behind ``reg``;
    ``mem_depth`` words of ``mem_data_bits`` (a multiple of 8) behind ``mem``; ``max_words``
    (<= 255) words at most per memory frame; ``timeout_cycles`` of silence that end a frame.

    Members:
        ``rx``, ``tx``: byte streams from and to the host (a UART).
        ``reg``, ``mem``: ``MemoryPortSignature`` requester ports (read data one cycle after
        acceptance; requests held while ``ready`` is low).
        ``start``: one-cycle pulse for each accepted ``START`` frame.
        ``status``: the word a ``STATUS`` frame returns (sampled when answered).
        ``busy``: high from a request's sync byte until its response is sent.
        ``frame_errors``: count of answered frames whose status was not ``OK`` (wraps).
        ``last_error``: the status of the most recent failed frame (``OK`` if none yet).
    """

    def __init__(self, *, reg_count, mem_depth, mem_data_bits, max_words=64,
                 timeout_cycles=100_000):
        self._reg_count = _check_int("reg_count", reg_count, 1, 1 << 16)
        self._mem_depth = _check_int("mem_depth", mem_depth, 2, 1 << 24)
        self._mem_data_bits = _check_int("mem_data_bits", mem_data_bits, 8, 256)
        if mem_data_bits % 8:
            raise ValueError(f"mem_data_bits must be a multiple of 8, not {mem_data_bits!r}")
        self._max_words = _check_int("max_words", max_words, 1, 255)
        self._timeout_cycles = _check_int("timeout_cycles", timeout_cycles, 16, 1 << 32)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "reg": Out(MemoryPortSignature(addr_bits=max(1, (reg_count - 1).bit_length()),
                                           data_bits=32)),
            "mem": Out(MemoryPortSignature(addr_bits=(mem_depth - 1).bit_length(),
                                           data_bits=mem_data_bits)),
            "start": Out(1),
            "status": In(32),
            "busy": Out(1),
            "frame_errors": Out(16),
            "last_error": Out(Status),
        })

    reg_count = property(lambda self: self._reg_count)
    mem_depth = property(lambda self: self._mem_depth)
    mem_data_bits = property(lambda self: self._mem_data_bits)
    max_words = property(lambda self: self._max_words)
    timeout_cycles = property(lambda self: self._timeout_cycles)

    def elaborate(self, platform):
        m = Module()
        s = _BridgeState(self)
        m.submodules.staging = s.staging
        m.d.comb += [self.rx.ready.eq(1), s.stage_rd.addr.eq(s.word_idx),
                     self.busy.eq(~s.hunting)]
        # One CRC step serves both directions: the byte received, or the byte being sent.
        m.d.comb += s.crc_byte.eq(Mux(self.tx.valid, self.tx.payload, self.rx.payload))
        m.d.sync += self.start.eq(0)
        # The frame checks (wide compares) are registered: one settling state before CHECK.
        s.check = Signal(Status)
        m.d.sync += s.check.eq(self._check(m, s))
        with m.FSM(name="bridge_fsm"):
            self._receive(m, s)
            self._execute(m, s)
            self._respond(m, s)
        return m

    def _to_response(self, m, s, code, length):
        """Leave for the response of status ``code`` with a ``length``-byte payload."""
        m.d.sync += [s.code.eq(code), s.resp_len.eq(length), s.idx.eq(0),
                     s.crc.eq(CRC16_INIT)]
        if not (isinstance(code, Status) and code == Status.OK):
            m.d.sync += [self.frame_errors.eq(self.frame_errors + 1),
                         self.last_error.eq(code)]
        m.next = "SEND-HEADER"

    def _frame_byte(self, m, s):
        """Return a context active when a frame byte arrives; time the frame out otherwise."""
        with m.If(self.rx.valid):
            m.d.sync += s.timer.eq(0)
        with m.Elif(s.timer == self._timeout_cycles - 1):
            self._to_response(m, s, Status.TIMEOUT, 0)
        with m.Else():
            m.d.sync += s.timer.eq(s.timer + 1)
        return m.If(self.rx.valid)

    def _receive(self, m, s):
        byte = self.rx.payload
        with m.State("HUNT"):
            m.d.comb += s.hunting.eq(1)
            with m.If(self.rx.valid & (byte == REQUEST_SYNC)):
                m.d.sync += [s.crc.eq(CRC16_INIT), s.idx.eq(0), s.timer.eq(0), s.cmd.eq(0),
                             s.count.eq(0), s.addr.eq(0)]
                m.next = "HEADER"
        with m.State("HEADER"):
            with self._frame_byte(m, s):
                m.d.sync += [s.crc.eq(s.crc_next), s.idx.eq(s.idx + 1)]
                with m.Switch(s.idx):
                    with m.Case(0):
                        m.d.sync += s.cmd.eq(byte)
                    for i in range(4):
                        with m.Case(1 + i):
                            m.d.sync += s.addr[8 * i:8 * i + 8].eq(byte)
                    with m.Case(5):
                        plen = s.payload_length(s.cmd, byte)
                        m.d.sync += [s.count.eq(byte), s.plen.eq(plen), s.idx.eq(0),
                                     s.word_idx.eq(0), s.byte_in_word.eq(0)]
                        with m.If(plen != 0):
                            m.next = "PAYLOAD"
                        with m.Else():
                            m.next = "CRC"
        with m.State("PAYLOAD"):
            with self._frame_byte(m, s):
                self._stage_byte(m, s, byte)
                with m.If(s.idx == s.plen - 1):
                    m.d.sync += s.idx.eq(0)
                    m.next = "CRC"
        with m.State("CRC"):
            with self._frame_byte(m, s):
                m.d.sync += [s.rcv_crc.eq(Cat(byte, s.rcv_crc[:8])), s.idx.eq(s.idx + 1)]
                with m.If(s.idx == 1):
                    m.next = "VALIDATE"
        with m.State("VALIDATE"):
            m.next = "CHECK"

    def _stage_byte(self, m, s, byte):
        """Shift a payload byte into the word accumulator; stage each completed memory word."""
        wb, width = s.wb, self._mem_data_bits
        next_acc = Cat(s.acc[8:], byte)
        m.d.sync += [s.crc.eq(s.crc_next), s.idx.eq(s.idx + 1),
                     s.acc.eq(next_acc), s.byte_in_word.eq(s.byte_in_word + 1)]
        with m.If(s.byte_in_word == wb - 1):
            m.d.sync += s.byte_in_word.eq(0)
            with m.If((s.cmd == Command.WRITE_MEM) & (s.word_idx < self._max_words)):
                m.d.comb += [s.stage_wr.en.eq(1), s.stage_wr.addr.eq(s.word_idx),
                             s.stage_wr.data.eq(next_acc[len(s.acc) - width:])]
                m.d.sync += s.word_idx.eq(s.word_idx + 1)

    def _check(self, m, s):
        """Return the status of the received frame (combinational)."""
        code = Signal(Status)
        is_reg = (s.cmd == Command.READ_REG) | (s.cmd == Command.WRITE_REG)
        is_mem = (s.cmd == Command.READ_MEM) | (s.cmd == Command.WRITE_MEM)
        known = is_reg | is_mem | (s.cmd == Command.START) | (s.cmd == Command.STATUS)
        with m.If(s.crc != s.rcv_crc):
            m.d.comb += code.eq(Status.BAD_CRC)
        with m.Elif(~known):
            m.d.comb += code.eq(Status.UNKNOWN_COMMAND)
        with m.Elif(is_reg & (s.count != 1) |
                    is_mem & ((s.count == 0) | (s.count > self._max_words))):
            m.d.comb += code.eq(Status.BAD_LENGTH)
        with m.Elif(is_reg & (s.addr >= self._reg_count) |
                    is_mem & (s.addr + s.count > self._mem_depth)):
            m.d.comb += code.eq(Status.BAD_ADDRESS)
        with m.Else():
            m.d.comb += code.eq(Status.OK)
        return code

    def _execute(self, m, s):
        code = s.check
        with m.State("CHECK"):
            m.d.sync += [s.word_idx.eq(0), s.mem_addr.eq(s.addr)]
            with m.If(code != Status.OK):
                self._to_response(m, s, code, 0)
            with m.Elif(s.cmd == Command.READ_REG):
                m.next = "REG-READ"
            with m.Elif(s.cmd == Command.WRITE_REG):
                m.next = "REG-WRITE"
            with m.Elif(s.cmd == Command.READ_MEM):
                self._to_response(m, s, Status.OK, s.count * s.wb)
            with m.Elif(s.cmd == Command.WRITE_MEM):
                m.next = "MEM-WRITE-FETCH"
            with m.Elif(s.cmd == Command.START):
                m.d.sync += self.start.eq(1)
                self._to_response(m, s, Status.OK, 0)
            with m.Else():
                m.d.sync += s.resp_word.eq(self.status)
                self._to_response(m, s, Status.OK, 4)
        with m.State("REG-READ"):
            m.d.comb += [self.reg.addr.eq(s.addr), self.reg.r_en.eq(1)]
            with m.If(self.reg.ready):
                m.next = "REG-READ-DATA"
        with m.State("REG-READ-DATA"):
            m.d.sync += s.resp_word.eq(self.reg.r_data)
            self._to_response(m, s, Status.OK, 4)
        with m.State("REG-WRITE"):
            m.d.comb += [self.reg.addr.eq(s.addr), self.reg.w_en.eq(1),
                         self.reg.w_data.eq(s.acc[len(s.acc) - 32:])]
            with m.If(self.reg.ready):
                self._to_response(m, s, Status.OK, 0)
        with m.State("MEM-WRITE-FETCH"):
            # The staging memory answers one cycle after its address (word_idx) changes.
            m.next = "MEM-WRITE-STORE"
        with m.State("MEM-WRITE-STORE"):
            m.d.comb += [self.mem.addr.eq(s.mem_addr), self.mem.w_en.eq(1),
                         self.mem.w_data.eq(s.stage_rd.data)]
            with m.If(self.mem.ready):
                m.d.sync += [s.word_idx.eq(s.word_idx + 1), s.mem_addr.eq(s.mem_addr + 1)]
                with m.If(s.word_idx == s.count - 1):
                    self._to_response(m, s, Status.OK, 0)
                with m.Else():
                    m.next = "MEM-WRITE-FETCH"

    def _send(self, m, s, byte, *, crc=True):
        """Offer ``byte`` to ``tx``; return a context active when it is taken."""
        m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(byte)]
        if crc:
            with m.If(self.tx.ready):
                m.d.sync += s.crc.eq(s.crc_next)
        return m.If(self.tx.ready)

    def _respond(self, m, s):
        header = [Const(RESPONSE_SYNC, 8), s.cmd, s.code.as_value(), s.resp_len[:8],
                  s.resp_len[8:]]
        with m.State("SEND-HEADER"):
            byte = Signal(8)
            with m.Switch(s.idx):
                for i, value in enumerate(header):
                    with m.Case(i):
                        m.d.comb += byte.eq(value)
            with self._send(m, s, byte, crc=False):
                m.d.sync += s.idx.eq(s.idx + 1)
                with m.If(s.idx != 0):
                    m.d.sync += s.crc.eq(s.crc_next)
                with m.If(s.idx == len(header) - 1):
                    m.d.sync += [s.idx.eq(0), s.bytes_left.eq(4)]
                    with m.If(s.resp_len == 0):
                        m.next = "SEND-CRC"
                    with m.Elif(s.cmd == Command.READ_MEM):
                        m.next = "MEM-READ"
                    with m.Else():
                        m.next = "SEND-WORD"
        with m.State("MEM-READ"):
            m.d.comb += [self.mem.addr.eq(s.mem_addr), self.mem.r_en.eq(1)]
            with m.If(self.mem.ready):
                m.next = "MEM-READ-DATA"
        with m.State("MEM-READ-DATA"):
            m.d.sync += [s.resp_word.eq(self.mem.r_data), s.bytes_left.eq(s.wb)]
            m.next = "SEND-WORD"
        with m.State("SEND-WORD"):
            with self._send(m, s, s.resp_word[:8]):
                m.d.sync += [s.resp_word.eq(s.resp_word >> 8), s.bytes_left.eq(s.bytes_left - 1)]
                with m.If(s.bytes_left == 1):
                    with m.If((s.cmd == Command.READ_MEM) & (s.word_idx != s.count - 1)):
                        m.d.sync += [s.word_idx.eq(s.word_idx + 1),
                                     s.mem_addr.eq(s.mem_addr + 1)]
                        m.next = "MEM-READ"
                    with m.Else():
                        m.next = "SEND-CRC"
        with m.State("SEND-CRC"):
            with self._send(m, s, Mux(s.idx == 0, s.crc[8:], s.crc[:8]), crc=False):
                m.d.sync += s.idx.eq(s.idx + 1)
                with m.If(s.idx == 1):
                    m.next = "HUNT"


class _BridgeState:
    """The registers of one ``HostBridge`` (shared by its FSM-building methods)."""

    def __init__(self, bridge):
        width = bridge.mem_data_bits
        self.wb = word_bytes(width)
        max_payload = 255 * self.wb
        self.cmd, self.addr, self.count = Signal(8), Signal(32), Signal(8)
        self.crc, self.rcv_crc = Signal(16, init=CRC16_INIT), Signal(16)
        self.crc_byte = Signal(8)
        self.crc_next = crc16_step(self.crc, self.crc_byte)
        self.code = Signal(Status)
        self.idx = Signal(range(max_payload + 1))
        self.plen = Signal(range(max_payload + 1))
        self.word_idx = Signal(8)
        self.byte_in_word = Signal(range(self.wb + 1))
        self.bytes_left = Signal(range(max(self.wb, 4) + 1))
        self.acc = Signal(max(32, width))
        self.resp_word = Signal(max(32, width))
        self.resp_len = Signal(16)
        # The memory address of the current word, kept in a register for Fmax.
        self.mem_addr = Signal((bridge.mem_depth - 1).bit_length())
        self.timer = Signal(range(bridge.timeout_cycles + 1))
        self.hunting = Signal()
        self.staging = memory.Memory(shape=width, depth=bridge.max_words, init=[])
        self.stage_wr = self.staging.write_port()
        self.stage_rd = self.staging.read_port()

    def payload_length(self, cmd, count):
        """Return the request payload length in bytes for ``cmd`` with ``count`` words."""
        return Mux(cmd == Command.WRITE_REG, 4, Mux(cmd == Command.WRITE_MEM, count * self.wb, 0))
