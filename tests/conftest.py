import numpy as np
import pytest

import ferrograd as fg


@pytest.fixture(autouse=True)
def _seed_and_grad_mode():
    """Each test starts from the same seed with grad mode on."""
    fg.manual_seed(0)
    np.random.seed(0)
    prev = fg.is_grad_enabled()
    fg.set_grad_enabled(True)
    yield
    fg.set_grad_enabled(prev)
