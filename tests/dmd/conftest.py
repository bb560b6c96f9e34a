import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # for `synthetic` and `presets`

from presets import random_inputs, small  # noqa: E402,F401  (re-exported for older imports)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
