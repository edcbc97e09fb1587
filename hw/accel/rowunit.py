"""What the row-at-a-time units of the compute queue (pool, eltwise) share.

Operands
    An operand names where a run of buffer rows starts: ``buffer`` (a ``Buffer``; the units
    take ``ACT`` and ``OUT``), ``half`` (the bank's ping-pong half) and ``row`` (inside the
    half). ``operand_layout(cfg)`` is its layout inside descriptors, ``Operand`` its host-side
    value and ``pack`` encodes a descriptor, refusing a value that does not fit its field.
    ``operand_fits`` is the hardware check that a run names ``ACT`` or ``OUT`` and ends
    inside its half.
Rows
    A row is ``T = cfg.tm`` int16 lanes (``lanes_layout``). Read from ``OUT``, a row gives its
    ``T`` value lanes (its mask bits are ignored); written to ``OUT``, a row gets its values
    and, in mask bit ``k``, ``value[k] > 0``.
Row traffic
    ``RowWalk`` steps through the rows of a run; ``RowReader`` reads a walk's rows and streams
    their lanes out in walk order; ``RowWriter`` writes a stream of rows to a walk's rows;
    ``RowPorts`` serves the readers and writers on the unit's ``act`` and ``out`` bank ports.
Control
    ``run_control`` accepts a unit's descriptors, checks them and sequences the runs: the
    ``desc`` / ``busy`` / ``error`` contract both units document.

A bank address is ``{half, row}`` with the half in the MSB (``hw/accel/banks.py``:
``half_depth``, ``bank_addr_bits``).
"""

from typing import NamedTuple

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.errors import ConfigError
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.buffers.lanes import LANE_BITS
from edgetrain.hw.buffers.memport import MemoryPortSignature
from edgetrain.hw.config import AcceleratorConfig
from .banks import bank_addr_bits, half_depth

__all__ = ["UNIT_BUFFERS", "Operand", "check_config", "operand_layout", "lanes_layout",
           "count_bits", "size_bits", "walk_layout", "pack", "operand_fits",
           "bank_port_signature", "row_access_signature", "RowWalk", "RowReader", "RowWriter",
           "RowPorts", "run_control"]

#: The buffers whose rows the pool and eltwise units read and write.
UNIT_BUFFERS = (Buffer.ACT, Buffer.OUT)


class Operand(NamedTuple):
    """The start of a run of rows, on the host: a ``Buffer``, a half (0 or 1), a row in it."""
    buffer: Buffer
    half: int
    row: int


def check_config(config):
    """Return ``config`` if it is an ``AcceleratorConfig``; raise ``TypeError`` otherwise."""
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
    return config


def count_bits(cfg):
    """Return the width of a row count: up to the rows of the larger unit buffer's half."""
    return max(half_depth(cfg, b) for b in UNIT_BUFFERS).bit_length()


def size_bits(cfg):
    """Return the width of a feature-map side (up to ``cfg.max_size``)."""
    return cfg.max_size.bit_length()


def operand_layout(cfg):
    """Return the ``StructLayout`` of an operand (``buffer``, ``half``, ``row``)."""
    row = max(bank_addr_bits(cfg, b) for b in UNIT_BUFFERS) - 1
    return data.StructLayout({"buffer": Buffer, "half": 1, "row": row})


def lanes_layout(cfg):
    """Return the layout of one row's value lanes: ``T`` int16."""
    return data.ArrayLayout(signed(LANE_BITS), cfg.tm)


def walk_layout(cfg):
    """Return the layout that starts a ``RowWalk``: ``count`` rows from ``at``, or with
    ``window`` the 2x2 windows of planes ``width`` rows wide (``count`` rows in all)."""
    return data.StructLayout({"at": operand_layout(cfg), "count": count_bits(cfg),
                              "window": 1, "width": size_bits(cfg)})


def bank_port_signature(cfg, buffer):
    """Return the ``MemoryPortSignature`` of a unit's port on ``buffer``'s bank."""
    return MemoryPortSignature(addr_bits=bank_addr_bits(cfg, buffer),
                               data_bits=buffer.row_bits(cfg))


def row_access_signature(cfg):
    """Return the signature of one reader's or writer's access to the banks.

    ``req`` carries requests (``at``: the row, ``write``, ``data``: the lanes written) under
    the memory-port rules: a request is held unchanged until accepted (``ready``). ``resp``
    carries the lanes of an accepted read in the cycle after its acceptance.
    """
    request = data.StructLayout({"at": operand_layout(cfg), "write": 1,
                                 "data": lanes_layout(cfg)})
    return wiring.Signature({
        "req": Out(stream.Signature(request)),
        "resp": In(stream.Signature(lanes_layout(cfg), always_ready=True)),
    })


def pack(layout, fields):
    """Return descriptor ``fields`` packed into an integer of ``layout``.

    ``fields`` maps each field name to an int, an enumeration member or (for a struct field)
    a mapping or an ``Operand``. Raises ``ConfigError`` naming the field when a value is not
    a member of its enumeration or does not fit its width; nothing else is checked, so the
    hardware's own checks can be exercised.
    """
    return layout.const(_checked(layout, fields, "")).as_value().value


def _checked(layout, fields, prefix):
    if isinstance(fields, Operand):
        fields = fields._asdict()
    out = {}
    for name, field in layout:
        value, where = fields[name], f"{prefix}{name}"
        if isinstance(field.shape, data.StructLayout):
            out[name] = _checked(field.shape, value, f"{where}.")
        elif isinstance(field.shape, enum.EnumType):
            try:
                out[name] = field.shape(value)
            except ValueError:
                raise ConfigError(f"{where} must be a {field.shape.__name__}, "
                                  f"not {value!r}") from None
        else:
            width = Shape.cast(field.shape).width
            if not isinstance(value, int) or isinstance(value, bool) or \
                    not 0 <= value < 1 << width:
                raise ConfigError(f"{where}={value!r} does not fit in {width} unsigned bits")
            out[name] = value
    return out


def operand_fits(cfg, operand, rows):
    """Return a 1-bit value: ``operand`` names ``ACT`` or ``OUT`` and its ``rows`` rows end
    inside its half."""
    end = operand.row + rows
    return ((operand.buffer == Buffer.ACT) & (end <= half_depth(cfg, Buffer.ACT)) |
            (operand.buffer == Buffer.OUT) & (end <= half_depth(cfg, Buffer.OUT)))


class RowWalk(wiring.Component):
    """Step through the rows of one run.

    ``start`` loads ``walk`` (see ``walk_layout``). While ``active``, ``at`` is the current
    row and ``step`` moves to the next; ``active`` falls after ``count`` steps. A plain walk
    visits ``count`` consecutive rows. A ``window`` walk visits the 2x2 windows of planes
    ``width`` rows wide (``width`` even; planes follow each other), window after window in
    row-major order and the four rows of a window row-major: rows ``r``, ``r + 1``,
    ``r + width``, ``r + width + 1`` for the window whose top-left row is ``r``.
    """

    def __init__(self, *, config):
        self._cfg = check_config(config)
        super().__init__({"start": In(1), "walk": In(walk_layout(config)), "step": In(1),
                          "at": Out(operand_layout(config)), "active": Out(1)})

    def elaborate(self, platform):
        m = Module()
        at = self.at
        pos, left = Signal.like(at.row), Signal(count_bits(self._cfg))
        k, col, last_col = Signal(2), Signal(size_bits(self._cfg)), Signal(size_bits(self._cfg))
        window, width = Signal(), Signal(size_bits(self._cfg))
        offset = Mux(k[1], width, 0) + k[0]
        m.d.comb += [self.active.eq(left != 0), at.row.eq(pos + Mux(window, offset, 0))]
        with m.If(self.start):
            w = self.walk
            m.d.sync += [at.buffer.eq(w.at.buffer), at.half.eq(w.at.half), pos.eq(w.at.row),
                         left.eq(w.count), window.eq(w.window), width.eq(w.width), k.eq(0),
                         col.eq(0), last_col.eq(w.width[1:] - 1)]
        with m.Elif(self.step & self.active):
            m.d.sync += left.eq(left - 1)
            with m.If(~window):
                m.d.sync += pos.eq(pos + 1)
            with m.Else():
                m.d.sync += k.eq(k + 1)
                with m.If((k == 3) & (col == last_col)):
                    m.d.sync += [col.eq(0), pos.eq(pos + width + 2)]
                with m.Elif(k == 3):
                    m.d.sync += [col.eq(col + 1), pos.eq(pos + 2)]
        return m


class RowReader(wiring.Component):
    """Read the rows of a walk and present their lanes on ``o``, in walk order.

    ``start`` loads ``walk`` (the reader must be drained: every row of the previous walk
    taken from ``o``). Reads are issued on ``bank`` while fewer than ``DEPTH`` rows are in
    flight or waiting on ``o``, so the reader never has to refuse a response.
    """

    DEPTH = 3   # one read per cycle while ``o`` takes one row per cycle

    def __init__(self, *, config):
        self._cfg = check_config(config)
        super().__init__({"start": In(1), "walk": In(walk_layout(config)),
                          "bank": Out(row_access_signature(config)),
                          "o": Out(stream.Signature(lanes_layout(config)))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.walk = walk = RowWalk(config=self._cfg)
        width = len(self.o.payload.as_value())
        m.submodules.queue = queue = fifo.SyncFIFO(width=width, depth=self.DEPTH)
        req, issued, inflight = self.bank.req, Signal(), Signal()
        m.d.comb += [walk.start.eq(self.start), walk.walk.eq(self.walk),
                     req.valid.eq(walk.active & (queue.level + inflight < self.DEPTH)),
                     req.payload.at.eq(walk.at), req.payload.write.eq(0),
                     issued.eq(req.valid & req.ready), walk.step.eq(issued),
                     queue.w_en.eq(self.bank.resp.valid),
                     queue.w_data.eq(self.bank.resp.payload),
                     self.o.valid.eq(queue.r_rdy), self.o.payload.eq(queue.r_data),
                     queue.r_en.eq(self.o.ready)]
        m.d.sync += inflight.eq(issued)
        return m


class RowWriter(wiring.Component):
    """Write the rows arriving on ``i`` to the rows of a walk, in walk order.

    ``start`` loads ``walk``; ``busy`` is high from the next cycle until the walk's last
    row has been accepted by its bank. ``i`` is taken only while ``busy``.
    """

    def __init__(self, *, config):
        self._cfg = check_config(config)
        super().__init__({"start": In(1), "walk": In(walk_layout(config)),
                          "i": In(stream.Signature(lanes_layout(config))),
                          "bank": Out(row_access_signature(config)), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.walk = walk = RowWalk(config=self._cfg)
        req = self.bank.req
        m.d.comb += [walk.start.eq(self.start), walk.walk.eq(self.walk),
                     req.valid.eq(walk.active & self.i.valid), req.payload.at.eq(walk.at),
                     req.payload.write.eq(1), req.payload.data.eq(self.i.payload),
                     self.i.ready.eq(walk.active & req.ready),
                     walk.step.eq(req.valid & req.ready), self.busy.eq(walk.active)]
        return m


class RowPorts(wiring.Component):
    """Serve ``requesters`` row accesses (``access[i]``) on the ``act`` and ``out`` bank ports.

    A request goes to the port of its ``at.buffer`` (a request naming ``WGT`` or ``MST`` is
    never accepted) at address ``{at.half, at.row}``. Each port takes one request per cycle:
    the lowest-numbered requester wanting it, except that a request the bank did not accept
    keeps the port until it is (the memory-port rule: a request is held while ``ready`` is
    low). A read's lanes reach the requester's ``resp`` in the next cycle. ``r_last`` stays
    low: the units never release a row (a STORE does).
    """

    def __init__(self, *, config, requesters):
        if not isinstance(requesters, int) or requesters < 1:
            raise TypeError(f"requesters must be a positive integer, not {requesters!r}")
        self._cfg = check_config(config)
        super().__init__({
            "act": Out(bank_port_signature(config, Buffer.ACT)),
            "out": Out(bank_port_signature(config, Buffer.OUT)),
            "access": In(row_access_signature(config)).array(requesters),
        })

    def elaborate(self, platform):
        m = Module()
        served = [self._serve(m, b, getattr(self, b.port_name)) for b in UNIT_BUFFERS]
        (act_ok, act_resp), (out_ok, out_resp) = served
        lanes = LANE_BITS * self._cfg.tm
        for i, access in enumerate(self.access):
            m.d.comb += [access.req.ready.eq(act_ok[i] | out_ok[i]),
                         access.resp.valid.eq(act_resp[i] | out_resp[i]),
                         access.resp.payload.eq(Mux(out_resp[i], self.out.r_data[:lanes],
                                                    self.act.r_data[:lanes]))]
        return m

    def _serve(self, m, buffer, port):
        """Drive ``port`` for the requests naming ``buffer``; return, per requester, the
        acceptance of its request and the arrival of its read's lanes."""
        name, n = buffer.port_name, len(self.access)
        wants = [a.req.valid & (a.req.payload.at.buffer == buffer) for a in self.access]
        held, held_sel = Signal(name=f"{name}_held"), Signal(range(n), name=f"{name}_held_sel")
        sel = Signal(range(n), name=f"{name}_sel")
        with m.If(held):
            m.d.comb += sel.eq(held_sel)
        with m.Else():
            for i in reversed(range(n)):
                with m.If(wants[i]):
                    m.d.comb += sel.eq(i)
        active, req = Signal(name=f"{name}_active"), Signal(self.access[0].req.payload.shape(),
                                                             name=f"{name}_req")
        with m.Switch(sel):
            for i, access in enumerate(self.access):
                with m.Case(i):
                    m.d.comb += [active.eq(wants[i]), req.eq(access.req.payload)]
        row_bits = bank_addr_bits(self._cfg, buffer) - 1
        values = req.data.as_value()
        if buffer is Buffer.OUT:
            values = Cat(values, *(lane > 0 for lane in req.data))
        m.d.comb += [port.addr.eq(Cat(req.at.row[:row_bits], req.at.half)),
                     port.r_en.eq(active & ~req.write), port.w_en.eq(active & req.write),
                     port.w_data.eq(values)]
        accepted = active & port.ready
        resp, resp_sel = Signal(name=f"{name}_resp"), Signal(range(n), name=f"{name}_resp_sel")
        m.d.sync += [held.eq(active & ~port.ready), held_sel.eq(sel),
                     resp.eq(accepted & ~req.write), resp_sel.eq(sel)]
        return ([accepted & (sel == i) for i in range(n)],
                [resp & (resp_sel == i) for i in range(n)])


def run_control(m, unit, *, cur, check_cycles, bad, running):
    """Accept descriptors on ``unit.desc`` into ``cur`` and sequence their runs.

    ``desc`` is ready while ``busy`` is low. On acceptance ``cur`` takes the descriptor,
    ``busy`` rises and ``error`` falls (from the next cycle). ``bad`` (computed from ``cur``,
    through registers if need be) is sampled in the ``check_cycles``-th cycle after that: a
    bad descriptor then drops ``busy`` and raises ``error``, having started nothing (``busy``
    was high for ``check_cycles`` cycles); a good one makes the returned ``start`` high in
    that cycle, and ``busy`` falls after the first later cycle in which ``running`` is low.
    ``error`` stays until the next acceptance.
    """
    start = Signal(name="run_start")
    wait = Signal(range(check_cycles), name="check_wait")
    m.d.comb += unit.desc.ready.eq(~unit.busy)
    with m.FSM(name="control"):
        with m.State("IDLE"):
            with m.If(unit.desc.valid & unit.desc.ready):
                m.d.sync += [cur.eq(unit.desc.payload), unit.busy.eq(1), unit.error.eq(0),
                             wait.eq(check_cycles - 1)]
                m.next = "CHECK"
        with m.State("CHECK"):
            m.d.sync += wait.eq(wait - 1)
            with m.If((wait == 0) & bad):
                m.d.sync += [unit.busy.eq(0), unit.error.eq(1)]
                m.next = "IDLE"
            with m.Elif(wait == 0):
                m.d.comb += start.eq(1)
                m.next = "RUN"
        with m.State("RUN"):
            with m.If(~running):
                m.d.sync += unit.busy.eq(0)
                m.next = "IDLE"
    return start
