"""The network of include/ds_nn.h in PyTorch, shared by the twins tests/bench/torch_*.py."""

import os
import sys

import torch.nn as nn


def env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"{os.path.basename(sys.argv[0])}: {name} must be a number")


def make_model():
    # x [1,28,28] -> conv 32 -> conv 32 -> pool -> conv 64 -> conv 64 -> pool -> 1024 -> 200 -> 200 -> 10
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(),
        nn.Conv2d(32, 32, 3), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),  # C,H,W order: 64*4*4 = 1024
        nn.Linear(1024, 200), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(200, 200), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(200, 10),
    )
