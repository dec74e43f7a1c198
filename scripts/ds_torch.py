#!/usr/bin/python3
"""Our model groups as PyTorch modules, and PyTorch modules as our model groups.

Commands (Debian's interpreter has python3-torch and python3-h5py: scripts/deps.sh --torch):
    scripts/ds_torch.py [eval] FILE.h5[:GROUP] [--data DIR] [--first N] [--count N]
                        [--temperature T] [--logits OUT.csv] [--fgsm EPS] [--threads N]
        test accuracy on MNIST (--data DIR, else $MNIST_DIR, else data/mnist; IDX files, .gz or
        not; pixel/255), printed as `distill_sweep eval` prints it; --logits writes
        index,label,z0..z9 like `distill_sweep eval --logits`; --fgsm EPS also runs FGSM with our
        gradient (fgsm() below) and prints its success rate over all the samples.
    scripts/ds_torch.py export STATE.pt FILE.h5:GROUP
        a state_dict saved by torch.save (of make_model() or any module with the same seven
        Conv2d/Linear layers, in order) as a model group that distill_sweep reads.

As a module:
    sys.path.insert(0, "scripts"); import ds_torch
    model = ds_torch.load("results/smoke/weights.h5:T100/student")  # eval mode, float32, logits
    model.temperature, model.role                                   # 100.0, "student"
    ds_torch.export(model, "mine.h5:model")                         # distill_sweep eval --model mine.h5

A model group (README, Results layout) holds conv1 conv2 conv3 conv4 fc1 fc2 fc3, each with
float32 `weight` and `bias` in PyTorch's layout, and the attributes temperature, role, epochs,
seed, test_accuracy. A group without them (what export() writes) is an external model: role
"external", temperature from the caller (default 1), as distill_sweep's --temperature.
"""

import argparse
import gzip
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERS = ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3")
EXTERNAL = {"temperature": 1.0, "role": "external", "epochs": 0, "seed": 0, "test_accuracy": -1.0}


def make_model():
    """The network of include/ds_nn.h (the one definition; the bench twins import it)."""
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


def weight_layers(model):
    """The seven Conv2d/Linear layers of model, in order, named as in LAYERS."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    ref = [m for m in make_model().modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    shapes = [tuple(m.weight.shape) for m in layers]
    if shapes != [tuple(m.weight.shape) for m in ref]:
        raise ValueError(f"not the network of include/ds_nn.h: weight shapes {shapes}")
    return list(zip(LAYERS, layers))


# ---- files ----

def split_spec(spec):
    """"FILE[:GROUP]" -> (FILE, GROUP or ""): the whole spec if it names a file (as distill_sweep)."""
    if os.path.exists(spec) or ":" not in spec:
        return spec, ""
    file, group = spec.rsplit(":", 1)
    return file, group


def default_group(f):
    """The first group of the file holding a model (a conv1 sub-group), else "model"."""
    found = []

    def visit(name, obj):
        if name.split("/")[-1] == "conv1" and hasattr(obj, "keys"):
            found.append(name.rsplit("/", 1)[0] if "/" in name else "/")
            return True
        return None

    f.visititems(visit)
    return found[0] if found else "model"


def shape_text(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"


def read_layer(f, where, path, param):
    """Copies dataset path ("GROUP/LAYER/weight") of f into param; a missing dataset, another
    shape or type is refused naming where ("FILE: GROUP") and the layer's dataset."""
    import numpy as np
    name = where + "/" + "/".join(path.split("/")[-2:])
    if path not in f:
        raise ValueError(f"{name}: missing dataset")
    d = f[path]
    if d.shape != tuple(param.shape):
        raise ValueError(f"{name}: expected {shape_text(param.shape)}, found {shape_text(d.shape)}")
    if d.dtype != np.float32:
        raise ValueError(f"{name}: expected float32, found {d.dtype}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(d[()]))


def load(spec, temperature=None):
    """The model group spec ("FILE.h5[:GROUP]") as make_model() in eval mode, with attributes
    temperature, role, epochs, seed, test_accuracy and spec ("FILE:GROUP"). temperature (> 0)
    sets that of an external model (a group without our attributes; default 1)."""
    import h5py
    file, group = split_spec(spec)
    model = make_model()
    with h5py.File(file, "r") as f:
        group = group or default_group(f)
        if group not in f:
            raise ValueError(f"{file}: no group {group}")
        where = f"{file}: {group.strip('/')}"
        for name, layer in weight_layers(model):
            if f"{group}/{name}" not in f:
                raise ValueError(f"{where}/{name}: missing layer")
            for p in ("weight", "bias"):
                read_layer(f, where, f"{group}/{name}/{p}", getattr(layer, p))
        attrs = dict(f[group].attrs)
    ours = {k: attrs[k] for k in EXTERNAL if k in attrs}
    if ours and len(ours) < len(EXTERNAL):
        missing = next(k for k in EXTERNAL if k not in ours)
        raise ValueError(f"{where}: missing attribute {missing}")
    meta = dict(EXTERNAL, **ours)
    if not ours and temperature:
        meta["temperature"] = temperature
    role = meta["role"]
    model.temperature = float(meta["temperature"])
    model.role = role.decode() if isinstance(role, bytes) else str(role)
    model.epochs, model.seed = int(meta["epochs"]), int(meta["seed"])
    model.test_accuracy = float(meta["test_accuracy"])
    model.spec = f"{file}:{group}"
    return model.float().eval()


def export(model, spec):
    """Writes the weights of model (make_model() or any module with the same seven Conv2d/Linear
    layers) as group GROUP of a new file FILE.h5 (spec "FILE.h5:GROUP", default group "model"),
    replacing any old file: float32 weight/bias per layer, no attributes (an external model)."""
    import h5py
    file, group = split_spec(spec)
    group = group or "model"
    tmp = file + ".tmp"
    with h5py.File(tmp, "w") as f:
        for name, layer in weight_layers(model):
            g = f.require_group(f"{group}/{name}")
            for p in ("weight", "bias"):
                g.create_dataset(p, data=getattr(layer, p).detach().float().cpu().numpy())
    os.replace(tmp, file)
    return f"{file}:{group}"


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    t = torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8)
    return t.reshape(dims)


def load_mnist(data=None, split="t10k"):
    """(x [n,1,28,28] float32 pixel/255, y [n] int64) of split "t10k" or "train" from data, else
    $MNIST_DIR, else data/mnist (as distill_sweep finds it). FileNotFoundError if absent."""
    d = data or os.environ.get("MNIST_DIR") or "data/mnist"
    for ext in (".gz", ""):
        img, lab = f"{d}/{split}-images-idx3-ubyte{ext}", f"{d}/{split}-labels-idx1-ubyte{ext}"
        if os.path.exists(img) and os.path.exists(lab):
            x = read_idx(img).float().div_(255).reshape(-1, 1, 28, 28)
            return x, read_idx(lab).long()
    raise FileNotFoundError(f"{d}: no {split}-images-idx3-ubyte[.gz] and {split}-labels-idx1-ubyte[.gz] "
                            "(set --data or MNIST_DIR, or run 'make data')")


# ---- evaluation and FGSM ----

def logits(model, x, batch=500):
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def stable_dz(z, y):
    """dL/dz of the cross-entropy of softmax(z) (float32), as src/attack computes it by default
    (include/ds_attack.h, gradient stable): p - onehot(y), with dL/dz_y = -(sum of the other p_j),
    zero only when every other p_j underflows (p_y - 1 is zero as soon as p_y rounds to 1)."""
    p = F.softmax(z.float(), dim=1)
    others = p.scatter(1, y[:, None], 0.0)
    return others.scatter(1, y[:, None], -others.sum(1, keepdim=True))


def framework_dz(z, y):
    """dL/dz as autograd computes it (gradient framework): softmax(z) - onehot(y) in float32."""
    return F.softmax(z.float(), dim=1) - F.one_hot(y, z.shape[1]).float()


def fgsm(model, x, y, eps, batch=256, dz=stable_dz):
    """FGSM as distill_sweep attack --attack fgsm --eps EPS (space softmax, true labels):
    x' = clip(x + eps sign(dL/dx), 0, 1), sign(0) = 0, dL/dz from dz (stable_dz or
    framework_dz). Denormals are kept, as PyTorch does on CPUs (torch.set_flush_denormal(True)
    flushes them). Returns (adversarial predictions [n], zero_grad [n]: the input gradient was
    exactly 0 everywhere)."""
    eps = torch.tensor(eps, dtype=torch.float32)
    preds, zero = [], []
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        xa = xb.detach().clone().requires_grad_(True)
        z = model(xa)
        (g,) = torch.autograd.grad(z, xa, grad_outputs=dz(z.detach(), yb))
        adv = torch.clamp(xb + eps * torch.sign(g), 0.0, 1.0)
        preds.append(logits(model, adv).argmax(1))
        zero.append((g.reshape(len(xb), -1) == 0).all(1))
    return torch.cat(preds), torch.cat(zero)


def write_logits(path, z, y, first):
    """CSV rows index,label,z0..z9 (index = first + row), like distill_sweep eval --logits."""
    with open(path, "w") as f:
        for i in range(len(z)):
            f.write(f"{first + i},{int(y[i])}," + ",".join(f"{float(v):.9g}" for v in z[i]) + "\n")


def cmd_eval(a):
    model = load(a.model, a.temperature)
    x, y = load_mnist(a.data)
    n = a.count or len(x) - a.first
    if a.first < 0 or n < 1 or a.first + n > len(x):
        raise ValueError(f"samples [{a.first}, {a.first + n}) outside the test set of {len(x)}")
    x, y = x[a.first:a.first + n], y[a.first:a.first + n]
    z = logits(model, x)
    acc = (z.argmax(1) == y).double().mean().item()
    print(f"{model.spec}: {model.role} at T={model.temperature:g}, {model.epochs} epochs: "
          f"test accuracy {100 * acc:.2f}% ({n} samples)")
    if a.logits:
        write_logits(a.logits, z, y, a.first)
        print(f"wrote the logits of {n} samples to {a.logits}")
    if a.fgsm is not None:
        torch.set_flush_denormal(a.denormals == "flush")
        pred, zero = fgsm(model, x, y, a.fgsm, dz=stable_dz if a.gradient == "stable" else framework_dz)
        s = int((pred != y).sum())
        print(f"fgsm eps={a.fgsm:g} (gradient {a.gradient}, denormals {a.denormals}): success {100 * s / n:.2f}% of {n} attempts ({s}); "
              f"zero gradient {100 * float(zero.double().mean()):.2f}%")


def cmd_export(a):
    model = make_model()
    model.load_state_dict(torch.load(a.state, map_location="cpu"))
    print(f"wrote {export(model, a.out)}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] not in ("eval", "export", "-h", "--help"):
        argv = ["eval"] + argv
    ap = argparse.ArgumentParser(prog="ds_torch.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval", help="test accuracy (and logits, FGSM) of a model group")
    e.add_argument("model", help="FILE.h5[:GROUP]")
    e.add_argument("--data", help="MNIST folder (default: $MNIST_DIR, then data/mnist)")
    e.add_argument("--first", type=int, default=0)
    e.add_argument("--count", type=int, default=0, help="samples (default: all from --first)")
    e.add_argument("--temperature", type=float, help="temperature of an external model (default 1)")
    e.add_argument("--logits", help="write index,label,z0..z9 to this CSV file")
    e.add_argument("--fgsm", type=float, metavar="EPS", help="also FGSM at this eps")
    e.add_argument("--gradient", choices=("stable", "framework"), default="stable",
                   help="FGSM's dL/dz_y: -(sum of the other p_j) (default) or p_y - 1")
    e.add_argument("--denormals", choices=("keep", "flush"), default="keep",
                   help="FGSM with float32 denormals kept (default, PyTorch's CPU default) or flushed")
    e.add_argument("--threads", type=int, default=2)
    x = sub.add_parser("export", help="a torch.save'd state_dict as a model group")
    x.add_argument("state", help="STATE.pt")
    x.add_argument("out", help="FILE.h5[:GROUP] (default group: model)")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "eval":
            torch.set_num_threads(a.threads)
            cmd_eval(a)
        else:
            cmd_export(a)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        sys.exit(f"ds_torch.py: {err}")


if __name__ == "__main__":
    main()
