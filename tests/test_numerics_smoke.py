from edgetrain.sim import numerics


def test_mix32_is_a_bijection_on_a_sample():
    import numpy as np
    x = np.arange(1 << 16, dtype=np.uint32)
    assert len(np.unique(numerics.mix32(x))) == 1 << 16
