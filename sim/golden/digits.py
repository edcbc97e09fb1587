"""The digits data set: scikit-learn's bundled 8x8 handwritten digits, with one fixed split.

``load_digits_split()`` returns 1437 training and 360 test images as float32 ``[N, 1, 8, 8]``
arrays with pixels 0..16 scaled to [0, 1], and int64 labels. The split is stratified 80/20
with ``random_state=0`` (``sklearn.model_selection.train_test_split``); it never changes, so
accuracies from different runs and backends are comparable. No network access is needed.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["DigitsSplit", "load_digits_split", "SPLIT_DESCRIPTION"]

SPLIT_DESCRIPTION = "sklearn load_digits, stratified 80/20 train/test, random_state=0"


@dataclass(frozen=True)
class DigitsSplit:
    """Training and test images ``[N, 1, 8, 8]`` (float32 in [0, 1]) and labels (int64)."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_split():
    """Return the fixed train/test split of the digits data set."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return DigitsSplit(x_tr, y_tr, x_te, y_te)
