"""Shared by the twins tests/bench/torch_*.py: the network of include/ds_nn.h (make_model, the
one definition, in scripts/ds_torch.py), MNIST's reader, and numbers from the environment."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from ds_torch import load_mnist, make_model  # noqa: E402,F401  (re-exported for the twins)


def env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"{os.path.basename(sys.argv[0])}: {name} must be a number")
