"""The specification of 2x2 max-pooling (stride 2) and its backward pass, on NCHW int16.

Forward: each output is the maximum of its 2x2 window; ``argmax`` (0..3) names the *first*
maximum in row-major window order: 0 = (0, 0), 1 = (0, 1), 2 = (1, 0), 3 = (1, 1).
Backward: each output gradient goes to its window's argmax position; the other three
positions get 0. The golden model, the hardware unit ``hw/engine/pool.py`` and its tests follow this.
"""

import numpy as np

__all__ = ["maxpool2x2", "maxpool2x2_backward"]


def _windows(x):
    n, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"2x2 max-pool needs even height and width, not {h}x{w}")
    # (n, c, h/2, w/2, 4) with the window in row-major order.
    return x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h // 2, w // 2, 4)


def maxpool2x2(x):
    """Return (y, argmax) of NCHW ``x``: window maxima (int16) and first-argmax (uint8)."""
    win = _windows(np.asarray(x, dtype=np.int16))
    argmax = np.argmax(win, axis=-1).astype(np.uint8)  # argmax returns the first maximum
    return np.take_along_axis(win, argmax[..., None], axis=-1)[..., 0], argmax


def maxpool2x2_backward(dy, argmax):
    """Return dx (int16, twice the height and width): ``dy`` routed to the argmax positions."""
    dy = np.asarray(dy, dtype=np.int16)
    n, c, h, w = dy.shape
    onehot = np.arange(4, dtype=np.uint8) == np.asarray(argmax)[..., None]
    win = np.where(onehot, dy[..., None], np.int16(0)).astype(np.int16)
    return win.reshape(n, c, h, w, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, 2 * h, 2 * w)
