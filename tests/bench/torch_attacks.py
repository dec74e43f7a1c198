#!/usr/bin/python3
"""PyTorch twins of the attacks in src/attack/, for throughput comparison with bench_attack.

Run with Debian's interpreter, which has python3-torch (scripts/deps.sh --bench):
    /usr/bin/python3 tests/bench/torch_attacks.py
Environment: THREADS (torch threads, default 2), BENCH_SECONDS (timed seconds per figure,
default 10), MNIST_DIR (else data/mnist; without MNIST, random pixels and labels), JSMA_BATCH.

The network of include/ds_nn.h, randomly initialised (seed 1) like bench_attack's default, eval
mode, float32. Prints:
    bench torch_fgsm_samples_per_s <value> samples/s
        cleverhans-style FGSM (eps 0.3, true labels): cross-entropy gradient, sign step, clip,
        and the forward that evaluates x'; batch 256
    bench torch_pgd_samples_per_s <value> samples/s
        PGD as bench_attack's (src/attack/pgd.c): L-inf eps 0.3, 20 steps of 0.01, uniform random
        start, cross-entropy, true labels; samples the model misclassifies are not attacked, and
        a sample stops at its first adversarial iterate (the others go on: the batch shrinks);
        batch 256
    bench torch_pgd_sample_steps_per_s <value> steps/s
        the steps taken by all samples of those PGD runs per second (early stops depend on the
        model, and bench_attack's random model is another one)
    bench torch_jsma_pairs_per_s <value> pairs/s
        JSMA-F as in the paper and cleverhans: targeted at every class but the true one, theta 1,
        gamma 0.145 (56 iterations of two pixels), Jacobian of the softmax by 10 backward passes
        over the batch, pair search over the full [batch, 784, 784] alpha/beta matrices as
        cleverhans' jsma_symbolic does; batches of JSMA_BATCH (default 4) (sample, target) pairs
        (the [B, 784, 784] temporaries make larger batches slower per pair here, and one batch of
        16 takes about a minute)
    bench torch_square_queries_per_s <value> queries/s
        Square Attack L-inf as max-andr/square-attack's square_attack_linf and bench_attack's
        square figure: eps 0.3, p_init 0.8, margin on the logits, 100 queries per sample (the
        initial one included), calls of 64 samples, fooled samples stop; queries counted as
        bench_attack counts them (the clean forward too)
BENCH_ONLY=name[,name] runs only these figures (fgsm, jsma, square).
"""

import os
import sys
import time

import torch
import torch.nn.functional as F

from twin_model import env_float, load_mnist, make_model

POOL = 1000


def load_inputs():
    """The first POOL MNIST test samples if found, else random pixels and labels."""
    try:
        x, y = load_mnist()
        return x[:POOL], y[:POOL], "MNIST test"
    except FileNotFoundError:
        pass
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(POOL, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (POOL,), generator=gen)
    return x, y, "random"


def fgsm(model, x, y, eps=0.3):
    xa = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(xa), y)
    (g,) = torch.autograd.grad(loss, xa)
    adv = torch.clamp(x + eps * g.sign(), 0.0, 1.0)
    with torch.no_grad():
        pred = model(adv).argmax(1)
    return adv, pred


def pgd(model, x, y, gen, eps=0.3, alpha=0.01, steps=20):
    """PGD with early stop per sample. Returns (adv, steps taken per sample)."""
    with torch.no_grad():
        active = model(x).argmax(1) == y          # misclassified samples are not attacked
    adv = (x + (2 * torch.rand(x.shape, generator=gen) - 1) * eps).clamp(0.0, 1.0)
    taken = torch.zeros(x.shape[0], dtype=torch.long)
    for k in range(steps + 1):
        idx = torch.nonzero(active)[:, 0]
        if idx.numel() == 0:
            break
        xa = adv[idx].detach().requires_grad_(True)
        logits = model(xa)
        fooled = logits.argmax(1) != y[idx]
        active[idx[fooled]] = False
        keep = ~fooled
        if k == steps or not keep.any():
            break
        loss = F.cross_entropy(logits[keep], y[idx][keep], reduction="sum")
        (g,) = torch.autograd.grad(loss, xa)
        rows = idx[keep]
        step = adv[rows] + alpha * g[keep].sign()
        adv[rows] = torch.min(torch.max(step, x[rows] - eps), x[rows] + eps).clamp(0.0, 1.0)
        taken[rows] += 1
    return adv, taken


def jsma(model, x, target, max_iters=56, theta=1.0):
    """JSMA-F on a batch: x [B,1,28,28], target [B]. Returns (success [B], iterations [B])."""
    B, n = x.shape[0], 784
    adv = x.clone().reshape(B, n)
    domain = adv < 1.0                        # pixels that may still increase
    active = torch.ones(B, dtype=torch.bool)
    iters = torch.zeros(B, dtype=torch.long)
    eye = torch.eye(n, dtype=torch.bool)
    onehot = F.one_hot(target, 10).bool()
    success = torch.zeros(B, dtype=torch.bool)
    for _ in range(max_iters + 1):
        xa = adv.detach().reshape(B, 1, 28, 28).requires_grad_(True)
        probs = F.softmax(model(xa), dim=1)
        pred = probs.argmax(1)
        success = pred == target
        active = active & ~success & (iters < max_iters) & (domain.sum(1) >= 2)
        if not active.any():
            break
        # Jacobian of the softmax outputs: one backward pass per class.
        jac = torch.stack([torch.autograd.grad(probs[:, k].sum(), xa, retain_graph=True)[0].reshape(B, n)
                           for k in range(10)], dim=1)                 # [B, 10, n]
        g_t = (jac * onehot[:, :, None]).sum(1)                         # alpha per pixel
        g_o = (jac * ~onehot[:, :, None]).sum(1)                        # beta per pixel
        # Pair search over [B, n, n] matrices, as cleverhans' jsma_symbolic.
        t_sum = g_t[:, :, None] + g_t[:, None, :]
        o_sum = g_o[:, :, None] + g_o[:, None, :]
        mask = (t_sum > 0) & (o_sum < 0) & domain[:, :, None] & domain[:, None, :] & ~eye
        scores = torch.where(mask, t_sum * -o_sum, torch.zeros((), dtype=t_sum.dtype))
        best = scores.reshape(B, -1).argmax(1)
        found = scores.reshape(B, -1).gather(1, best[:, None])[:, 0] > 0
        p1, p2 = best // n, best % n
        step = active & found
        rows = torch.nonzero(step)[:, 0]
        adv[rows, p1[rows]] = torch.clamp(adv[rows, p1[rows]] + theta, 0, 1)
        adv[rows, p2[rows]] = torch.clamp(adv[rows, p2[rows]] + theta, 0, 1)
        domain[rows, p1[rows]] = False
        domain[rows, p2[rows]] = False
        iters += step.long()
        active = step                      # no pair: the attempt stops
    return success, iters


def square_p(p_init, it, n_iters):
    """The reference's p_selection: p_init halved after 10, 50, ..., 8000 of 10,000 iterations."""
    it = int(it / n_iters * 10000)
    halvings = sum(it > b for b in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000))
    return p_init if it > 10000 else p_init / 2 ** halvings


def margin(logits, y):
    """z_y - max_{j != y} z_j and whether argmax z != y."""
    other = logits.clone()
    other[torch.arange(logits.shape[0]), y] = -float("inf")
    return logits.gather(1, y[:, None])[:, 0] - other.max(1).values, logits.argmax(1) != y


def square_linf(model, x, y, eps=0.3, n_queries=100, p_init=0.8, gen=None):
    """Square Attack L-inf on x [B,1,h,h], labels y [B]; returns (fooled [B], queries [B])."""
    B, h = x.shape[0], x.shape[-1]
    with torch.no_grad():
        signs = torch.randint(0, 2, (B, 1, 1, h), generator=gen) * 2.0 - 1.0
        best = torch.clamp(x + eps * signs, 0.0, 1.0)           # vertical stripes
        m_best, fooled = margin(model(best), y)
        queries = torch.ones(B, dtype=torch.long)
        for it in range(n_queries - 1):
            idx = torch.nonzero(~fooled)[:, 0]
            n = idx.numel()
            if n == 0:
                break
            s = int(round((square_p(p_init, it, n_queries) * h * h) ** 0.5))
            s = min(max(s, 1), h - 1)
            r0 = torch.randint(0, h - s, (n,), generator=gen)
            c0 = torch.randint(0, h - s, (n,), generator=gen)
            d = (torch.randint(0, 2, (n,), generator=gen) * 2.0 - 1.0) * eps
            rows = (r0[:, None] + torch.arange(s))[:, :, None].expand(n, s, s)
            cols = (c0[:, None] + torch.arange(s))[:, None, :].expand(n, s, s)
            k = torch.arange(n)[:, None, None].expand(n, s, s)
            xs, bs = x[idx, 0][k, rows, cols], best[idx, 0][k, rows, cols]
            same = (torch.clamp(xs + d[:, None, None], 0.0, 1.0) == bs).flatten(1).all(1)
            d = torch.where(same, -d, d)                           # no change: the other sign
            cand = best[idx].clone()
            cand[k, 0, rows, cols] = torch.clamp(xs + d[:, None, None], 0.0, 1.0)
            m, f = margin(model(cand), y[idx])
            better = (m < m_best[idx]) | f
            best[idx[better]] = cand[better]
            m_best[idx[better]] = m[better]
            fooled[idx] = f
            queries[idx] += 1
    return fooled, queries


def wanted(name):
    only = os.environ.get("BENCH_ONLY", "")
    return not only or name in only.split(",")


def main():
    threads = int(env_float("THREADS", 2))
    seconds = env_float("BENCH_SECONDS", 10)
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = make_model().float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x, y, source = load_inputs()

    notes = []
    if wanted("fgsm"):
        batch, n, i = 256, 0, 0
        fgsm(model, x[:batch], y[:batch])  # warm-up
        t0 = time.perf_counter()
        while True:
            i = (i + batch) % (POOL - batch + 1)
            fgsm(model, x[i:i + batch], y[i:i + batch])
            n += batch
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
        print(f"bench torch_fgsm_samples_per_s {n / elapsed:.1f} samples/s", flush=True)

    if wanted("pgd"):  # PGD, 20 steps.
        gen = torch.Generator().manual_seed(3)
        batch, n, i, steps_total = 256, 0, 0, 0
        pgd(model, x[:batch], y[:batch], gen, steps=2)  # warm-up
        t0 = time.perf_counter()
        while True:
            i = (i + batch) % (POOL - batch + 1)
            _, taken = pgd(model, x[i:i + batch], y[i:i + batch], gen)
            n += batch
            steps_total += int(taken.sum())
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
        print(f"bench torch_pgd_samples_per_s {n / elapsed:.1f} samples/s", flush=True)
        print(f"bench torch_pgd_sample_steps_per_s {steps_total / elapsed:.1f} steps/s", flush=True)
        notes.append(f"pgd {steps_total / n:.1f} steps per sample (20 at most)")

    if wanted("jsma"):
        # (sample, target) pairs for every target but the true label, B at a time.
        pairs = [(s, t) for s in range(POOL) for t in range(10) if t != int(y[s])]
        B, k, n, it_total = int(env_float("JSMA_BATCH", 4)), 0, 0, 0
        t0 = time.perf_counter()
        while True:
            chunk = pairs[k:k + B]
            k = (k + B) % (len(pairs) - B)
            idx = torch.tensor([s for s, _ in chunk])
            tgt = torch.tensor([t for _, t in chunk])
            _, iters = jsma(model, x[idx], tgt)
            n += len(chunk)
            it_total += int(iters.sum())
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
        print(f"bench torch_jsma_pairs_per_s {n / elapsed:.2f} pairs/s", flush=True)
        notes.append(f"jsma {it_total / n:.1f} iterations per pair")

    if wanted("square"):
        # Calls of 64 samples; queries as bench_attack counts them: the clean forward, then the
        # attack's (the initial one included).
        batch, i, queries, fooled_n, n = 64, 0, 0, 0, 0
        gen = torch.Generator().manual_seed(1)
        t0 = time.perf_counter()
        while True:
            xb, yb = x[i:i + batch], y[i:i + batch]
            with torch.no_grad():
                model(xb).argmax(1)  # the clean prediction
            fooled, q = square_linf(model, xb, yb, gen=gen)
            queries += batch + int(q.sum())
            fooled_n += int(fooled.sum())
            n += batch
            i = (i + batch) % (POOL - batch + 1)
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
        print(f"bench torch_square_queries_per_s {queries / elapsed:.1f} queries/s", flush=True)
        notes.append(f"square {100.0 * fooled_n / n:.1f}% fooled")
    print(f"torch_attacks.py: torch {torch.__version__}, {threads} threads, {source} inputs, "
          f"{', '.join(notes) + ', ' if notes else ''}{seconds:g} s per figure", file=sys.stderr)

if __name__ == "__main__":
    main()
