#!/usr/bin/python3
"""dynopool.load_checkpoint on checkpoints that `dynopool train` writes here: tiny
Fashion-MNIST runs (the three networks with DynOPool from alphas other than 2, so that maps are
sampled between pixels; ResNet-50's blocks share one alpha between main path and shortcut;
VGG-16 and EfficientNet-B0 with Shape Adaptor; EfficientNet-B0 with SiLU and SE) load strictly, and on the first 64 real test images their logits equal those of the C inference API
(dp_infer_run, include/dynopool/infer.h) and their loss that of `dynopool eval`.

    /usr/bin/python3 tests/python/test_checkpoint.py DYNOPOOL_CLI FASHION_MNIST_DIR

Tolerance, per network, from the case itself: the same network in float64 (the pure-PyTorch
layers, R64) is the exact value; PyTorch's float32 forward with the C-backed layers (PT) is
e32 = max |PT - R64| away from it. The C engine runs float32 too (other summation orders, batch
norm folded into the convolutions), so its logits must be within tol = 4 e32 + 8 eps max |R64|
of PT (eps = 2^-23). `dynopool eval` reports the mean cross-entropy, which moves by at most
2 max |dz| when the logits z move by dz: PyTorch's loss must be within 2 tol of it.
The logits of different images must differ by more than 10 tol, or the comparison would say
little (after two SGD steps MobileNetV2's barely depend on the image: about 70 tol apart;
EfficientNet-B0's only ~10 tol, so its runs take batch 16, 16 steps: 1e5 tol and more).
"""
import ctypes
import gzip
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError as e:
    print(f"SKIP: PyTorch is not importable ({e}); tools/deps.sh installs python3-torch")
    sys.exit(77)
import torch.nn.functional as F

import dynopool
from dynopool import models

EPS = 2.0 ** -23
N_IMAGES = 64
RUNS = [("vgg16", "dynopool", ["--alpha-init", "1.7,2.3,0.9,1.6"]),
        ("resnet50", "dynopool", ["--alpha-init", "1.3"]),
        ("mobilenetv2", "dynopool", ["--alpha-init", "1.6,0.8,2.5"]),
        ("vgg16", "shape-adaptor", []),
        ("efficientnet-b0", "dynopool", ["--alpha-init", "1.6,0.8,2.5", "--batch", "16"]),
        ("efficientnet-b0", "shape-adaptor", ["--batch", "16"])]
FAILS = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        FAILS.append(what)


def read_idx_images(data, n):
    """The first n images of the IDX test file, (n, 1, rows, cols) uint8."""
    path = os.path.join(data, "t10k-images-idx3-ubyte")
    opener, path = (gzip.open, path + ".gz") if os.path.exists(path + ".gz") else (open, path)
    with opener(path, "rb") as f:
        raw = f.read()
    assert raw[:4] == b"\0\0\x08\x03", f"{path}: not an IDX file of unsigned bytes in 3 dimensions"
    rows, cols = int.from_bytes(raw[8:12], "big"), int.from_bytes(raw[12:16], "big")
    return torch.frombuffer(bytearray(raw[16:16 + n * rows * cols]), dtype=torch.uint8).reshape(n, 1, rows, cols)


def infer_logits(path, x, classes):
    """dp_infer_load + dp_infer_run of libdynopool on x."""
    lib = dynopool.library()
    h = ctypes.c_void_p()
    err = ctypes.create_string_buffer(1024)
    rc = lib.dp_infer_load(path.encode(), ctypes.byref(h), err, len(err))
    if rc:
        raise RuntimeError(f"dp_infer_load: {err.value.decode()}")
    try:
        x = x.contiguous()
        z = torch.empty((x.shape[0], classes), dtype=torch.float32)
        rc = lib.dp_infer_run(h, ctypes.c_void_p(x.data_ptr()), x.shape[0], ctypes.c_void_p(z.data_ptr()))
        if rc:
            raise RuntimeError(f"dp_infer_run: {lib.dp_strerror(rc).decode()}")
        return z
    finally:
        lib.dp_infer_free(h)


def one_run(cli, data, tmp, model, pool, extra):
    out = os.path.join(tmp, f"{model}-{pool}")
    cmd = [cli, "train", "--data", data, "--model", model, "--pool", pool, *extra, "--width",
           "0.0625", "--epochs", "1", "--limit", "256", "--limit-test", str(N_IMAGES),
           "--threads", "1", "--out", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        check(False, f"{model} {pool}: {' '.join(cmd)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        return
    path = os.path.join(out, "checkpoint.safetensors")
    # strict load (the default), of the run folder as `dynopool eval` takes it
    try:
        net = dynopool.load_checkpoint(out)
    except Exception as e:  # noqa: BLE001 - reported as the test's failure
        check(False, f"{model} {pool}: load_checkpoint: {type(e).__name__}: {e}")
        return
    tensors, _ = dynopool.read_safetensors(path)
    n_model = sum(1 for k in tensors if not k.startswith("optimizer."))
    pools = [m for m in net.modules() if isinstance(m, models.DynOPool)]
    alphas_ok = True
    if pool == "dynopool":
        # the metadata's JSON numbers are printed by cJSON, which may drop the 17th digit: the
        # alphas are float32, so compare them as float32
        alphas_ok = bool(pools) and all(type(m) is dynopool.DynOPool2d for m in pools) and \
            torch.equal(torch.stack([m.alpha.detach() for m in pools]),
                        torch.tensor(net.meta["alphas"], dtype=torch.float64).to(torch.float32))
    check(len(net.state_dict()) == n_model and alphas_ok and not net.training,
          f"{model} {pool}: loaded strictly, {n_model} tensors (and "
          f"{len(tensors) - n_model} optimizer buffers skipped), "
          + (f"{len(pools)} DynOPool2d layers with the checkpoint's alphas, " if pools else "")
          + "eval mode")
    # the run's test view: pixels / 255, then the stored per-channel mean and std
    pixels = read_idx_images(data, N_IMAGES)
    mean = torch.tensor(net.mean, dtype=torch.float32)[:, None, None]
    std = torch.tensor(net.std, dtype=torch.float32)[:, None, None]
    x = (pixels.to(torch.float32) / 255 - mean) / std
    with torch.no_grad():
        z_pt = net(x)
        z_64 = dynopool.load_checkpoint(out, impl="reference").double()(x.double())
    z_c = infer_logits(path, x, int(net.meta["classes"]))
    e32 = (z_pt.double() - z_64).abs().max().item()
    tol = 4 * e32 + 8 * EPS * z_64.abs().max().item()
    diff = (z_c.double() - z_pt.double()).abs().max().item()
    spread = (z_64 - z_64.mean(dim=0)).abs().max().item()  # how much the images' logits differ
    check(diff <= tol and spread > 10 * tol,
          f"{model} {pool}: logits of {N_IMAGES} test images, max |dp_infer_run - PyTorch| "
          f"{diff:.2e} <= {tol:.2e} (|PyTorch f32 - f64| {e32:.2e}; logits differ between images "
          f"by up to {spread:.2e})")
    r = subprocess.run([cli, "eval", "--checkpoint", out, "--limit", str(N_IMAGES), "--json",
                        "--threads", "1"], capture_output=True, text=True)
    ev = json.loads(r.stdout) if r.returncode == 0 else {}
    labels_path = os.path.join(data, "t10k-labels-idx1-ubyte.gz")
    with gzip.open(labels_path, "rb") as f:
        labels = torch.frombuffer(bytearray(f.read()[8:8 + N_IMAGES]), dtype=torch.uint8).long()
    loss = F.cross_entropy(z_pt.double(), labels).item()
    acc = (z_pt.argmax(1) == labels).double().mean().item() * 100
    ok = ev.get("images") == N_IMAGES and abs(ev.get("loss", 1e9) - loss) <= 2 * tol
    check(ok, f"{model} {pool}: dynopool eval on the same {N_IMAGES} images: loss "
              f"{ev.get('loss', float('nan')):.7f}, PyTorch {loss:.7f} (within {2 * tol:.1e}); "
              f"accuracy {ev.get('accuracy', float('nan')):.2f}%, PyTorch {acc:.2f}%")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: test_checkpoint.py DYNOPOOL_CLI FASHION_MNIST_DIR")
    cli, data = sys.argv[1:]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        for model, pool, extra in RUNS:
            one_run(cli, data, tmp, model, pool, extra)
        # errors name the file
        bad = os.path.join(tmp, "bad.safetensors")
        with open(bad, "wb") as f:
            f.write((1 << 40).to_bytes(8, "little") + b"{}")
        try:
            dynopool.load_checkpoint(bad)
            check(False, "a truncated file is refused")
        except ValueError as e:
            check(bad in str(e), f"a truncated file is refused, naming it ({e})")
    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
