"""The dynamic fixed-point policy: delayed scaling of every tensor format.

A *format key* names one power-of-two scale (``frac``) that one or more tensors share, e.g.
``("act", 2)`` for the output of convolution slot 2 or ``("grad", "loss")`` for the loss
gradient. Tensors that must add without a shift (the trunk of a chain of reversible blocks,
its gradients) use the same key.

Delayed scaling
    During step ``t`` every producer of a key *observes* the magnitude its hardware can
    report: ``amax`` of its exact accumulator (before requantization) together with the
    ``frac`` that accumulator carries. At the end of the step ``advance()`` sets each observed
    key to the smallest candidate ``numerics.frac_for_amax(amax, frac_at, headroom=h)`` (an
    ``amax`` of 0 carries no information and is ignored), capped by the key's ceiling if it has
    one. Step ``t + 1`` then uses the new formats. Keys nobody observed keep their frac.
    The headroom ``h`` is ``HEADROOM`` (1 bit: the tensor may double before it saturates)
    unless the key has its own: gradients use ``GRAD_HEADROOM`` (4 bits), because one
    misclassified sample can raise a batch's gradient tenfold from one step to the next.

Step-0 initialisation
    The trainer runs *calibration passes*: forward and backward on the first training batch
    with observation on and no weight update, calling ``advance()`` after each, until no
    format changes (each pass fixes at least the first still-wrong layer, because an
    accumulator is exact whatever its output format was). Then training starts at step 0.
"""

from .numerics import frac_for_amax

__all__ = ["Formats", "HEADROOM", "GRAD_HEADROOM"]

HEADROOM = 1
GRAD_HEADROOM = 4


class Formats:
    """The current ``frac`` of every format key, updated by delayed scaling.

    ``initial`` maps keys to their starting frac; ``ceilings`` optionally maps keys to the
    largest frac they may take (e.g. a format whose range is known in advance);
    ``headroom`` optionally maps keys to their own headroom in bits.
    """

    def __init__(self, initial, *, ceilings=None, headroom=None):
        self._frac = dict(initial)
        self._ceilings = dict(ceilings or {})
        self._headroom = dict(headroom or {})
        for key, top in self._ceilings.items():
            if key not in self._frac:
                raise KeyError(f"format ceiling for unknown key {key!r}")
            self._frac[key] = min(self._frac[key], top)
        self._candidates = {}

    def __getitem__(self, key):
        return self._frac[key]

    def keys(self):
        return self._frac.keys()

    def as_dict(self):
        """Return ``{str(key): frac}`` (for JSON metrics)."""
        return {"/".join(map(str, k)) if isinstance(k, tuple) else str(k): v
                for k, v in self._frac.items()}

    def observe(self, key, amax, frac_at):
        """Record that a producer of ``key`` saw magnitude ``amax`` at ``frac_at`` this step."""
        if key not in self._frac:
            raise KeyError(f"unknown format key {key!r}")
        amax = int(amax)
        if amax == 0:
            return
        cand = frac_for_amax(amax, frac_at, headroom=self._headroom.get(key, HEADROOM))
        self._candidates[key] = min(cand, self._candidates.get(key, cand))

    def advance(self):
        """Apply this step's observations; return the keys whose frac changed."""
        changed = []
        for key, cand in self._candidates.items():
            new = min(cand, self._ceilings.get(key, cand))
            if new != self._frac[key]:
                self._frac[key] = new
                changed.append(key)
        self._candidates = {}
        return changed
