#!/usr/bin/python3
"""PyTorch twin of the network in include/ds_nn.h, for throughput comparison with the C engine.

Run with Debian's interpreter, which has python3-torch (scripts/deps.sh --bench):
    /usr/bin/python3 tests/bench/torch_twin.py
Environment: THREADS (torch threads, default 2), BENCH_SECONDS (timed seconds per measurement,
default 10), BENCH_WARMUP (warm-up seconds per measurement, default 2).

Random inputs in [0, 1], random labels, float32, batch 128; no data set is needed. Prints:
    bench torch_train_samples_per_s <value> samples/s
        forward + backward + SGD step (lr 0.1, momentum 0.5), dropout on
    bench torch_input_grad_samples_per_s <value> samples/s
        model.eval(), forward + backward of the cross-entropy to the input only (parameters
        have requires_grad False): the gradient FGSM needs
"""

import sys
import time

import torch
import torch.nn.functional as F

from twin_model import env_float, make_model

BATCH = 128


def timed(step, warmup_s, seconds):
    """Runs step() for warmup_s, then for at least `seconds`; returns samples per second."""
    t_end = time.perf_counter() + warmup_s
    step()
    while time.perf_counter() < t_end:
        step()
    n = 0
    t0 = time.perf_counter()
    while True:
        step()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return n * BATCH / elapsed


def main():
    threads = int(env_float("THREADS", 2))
    seconds = env_float("BENCH_SECONDS", 10)
    warmup = env_float("BENCH_WARMUP", 2)
    torch.set_num_threads(threads)
    torch.manual_seed(1)

    model = make_model().float()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 312202, n_params  # ds_params_count()

    gen = torch.Generator().manual_seed(2)
    x = torch.rand(BATCH, 1, 28, 28, generator=gen, dtype=torch.float32)
    y = torch.randint(0, 10, (BATCH,), generator=gen)

    # Training step: forward with dropout, cross-entropy, backward, SGD with momentum.
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    train = timed(train_step, warmup, seconds)
    print(f"bench torch_train_samples_per_s {train:.1f} samples/s", flush=True)

    # Input gradient (cleverhans-style FGSM): no dropout, no parameter gradients.
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    def input_grad_step():
        xa = x.detach().requires_grad_(True)
        loss = F.cross_entropy(model(xa), y)
        (g,) = torch.autograd.grad(loss, xa)
        return g

    grad = timed(input_grad_step, warmup, seconds)
    print(f"bench torch_input_grad_samples_per_s {grad:.1f} samples/s", flush=True)
    print(f"torch_twin.py: torch {torch.__version__}, {threads} threads, batch {BATCH}, "
          f"{seconds:g} s per measurement", file=sys.stderr)


if __name__ == "__main__":
    main()
