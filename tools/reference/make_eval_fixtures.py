"""Fixtures of the FAD feature autoencoder (eval/) for the Go parity tests.

    python tools/reference/make_eval_fixtures.py --out testdata/fixtures

Writes (a few seconds, bit-for-bit reproducible):
  fad_ae_state.pth  an AE(in 1, d 64) state_dict in the layout of the authors' feature model
                    (encoder.{i}.0 conv, encoder.{i}.1 BatchNorm2d, latent_layer, decoder_input,
                    decoder.{i}.{0,1}, final_layer.{0,1,3}; every key incl. num_batches_tracked),
                    float32, parameters are views into one shared storage (pth_model) to keep it small
  fad_ae.pt         keys (float64): input.x (8,1,32,32) and input.y (8,1,32,32), hashed in [-1, 1];
                    feat.eval (8,64): x through the encoder in evaluation mode (running statistics);
                    feat.batch (8,64): x in training mode (batch statistics, the authors' FAD
                    protocol), as two batches of 4; recon.eval (8,1,32,32): the full autoencoder in
                    evaluation mode; feat.y (8,64): y in training mode as one batch of 8;
                    fad (scalar): the authors' Frechet distance (scipy sqrtm) between feat.batch and
                    feat.y (mean, np.cov) -- 8 vectors in 64 dimensions: singular covariances.
  fad_ref_stats.npz np.savez of feat.y's mu and sigma (the format of the authors' *_test_64.npz)
  inception_tiny_features.pt, inception_tiny_logits.pt  two tiny TorchScript networks in the shape
                    of the FID / IS Inception (input (N, 3, 299, 299); 37x37 average pooling to 8x8,
                    then a hashed Linear to 16 features / 10 logits)
  inception_tiny.pt keys: input.a (12,1,32,32), input.b (12,3,32,32) hashed in [-1, 1] (float64);
                    resize.a0 (299,299) float32: channel 0 of image 0 of a as clean-fid preprocesses
                    it (0..255 integers, Pillow BICUBIC resize of the float image, clip);
                    feat.a, feat.b (12,16): the features network on the clean-fid input (x - 128) / 128;
                    fid: the Frechet distance of feat.a and feat.b (SciPy, authors' formula);
                    logits.a (12,10): the logits network on a in [0, 1], bilinear-resized to 299
                    (F.interpolate, align_corners False), grey repeated to RGB; is.mean, is.std: the
                    Inception Score of logits.a in 3 splits.
  folder_scores.json  score_folders.py's FAD (fad_ae_state.pth), FID and IS (3 splits) of folder A
                    against folder B, written as PNGs from testdata/mnist-small: A the first 150
                    training digits as grey 28x28 PNGs, B the first 100 test digits as RGB PNGs
                    (the grey value in all three channels) 30 wide, 28 high (one black column each
                    side), so B goes through the RGB-to-grey conversion and the centre crop, and
                    both through the bilinear resize to the FAD model's 32x32.
The AE is written from a description of the authors' FAD autoencoder, not copied from the authors' code.
"""

import argparse
import gzip
import json
import linecache
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from make_baseline_fixtures import pth_model
from make_fixtures import c64, hash_tensor, save, scalar64
from make_frechet_fixture import authors


def block(cin, cout, transposed=False):
    conv = (nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1) if transposed
            else nn.Conv2d(cin, cout, 3, stride=2, padding=1))
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.LeakyReLU())


class AE(nn.Module):
    """The FAD feature model: four (AELarge: five) conv / BN / LeakyReLU blocks, Linear to d,
    and a mirrored transposed-conv decoder ending in tanh."""

    def __init__(self, in_channels, latent_dim, large=False):
        super().__init__()
        h = [32, 64, 128, 256] + ([512] if large else [])
        self.hidden = h
        self.encoder = nn.Sequential(*[block(a, b) for a, b in zip([in_channels] + h[:-1], h)])
        self.latent_layer = nn.Linear(h[-1] * 4, latent_dim)
        self.decoder_input = nn.Linear(latent_dim, h[-1] * 4)
        r = h[::-1]
        self.decoder = nn.Sequential(*[block(r[i], r[i + 1], True) for i in range(len(r) - 1)])
        self.final_layer = nn.Sequential(
            nn.ConvTranspose2d(h[0], h[0], 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(h[0]), nn.LeakyReLU(),
            nn.ConvTranspose2d(h[0], in_channels, 3, padding=1), nn.Tanh())

    def encode(self, x):
        return self.latent_layer(torch.flatten(self.encoder(x), start_dim=1))

    def forward(self, x):
        z = self.encode(x)
        y = self.decoder_input(z).view(-1, self.hidden[-1], 2, 2)
        return self.final_layer(self.decoder(y)), z


def authors_fd(f1, f2):
    """The authors' Frechet distance (make_frechet_fixture.authors) of two feature sets."""
    return authors(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))


# Compiled from a string so that the TorchScript files' debug information names "tiny_inception.py"
# rather than a path of the machine that wrote them.
TINY_SRC = """
import torch
import torch.nn as nn


class TinyInception(nn.Module):
    \"\"\"A stand-in with the interface of the FID/IS Inception: (N, 3, 299, 299) -> (N, D).\"\"\"

    def __init__(self, d: int):
        super().__init__()
        self.fc = nn.Linear(192, d)

    def forward(self, x):
        x = torch.nn.functional.avg_pool2d(x.to(self.fc.weight.dtype), 37, 37)
        return self.fc(torch.flatten(x, 1))
"""
linecache.cache["tiny_inception.py"] = (len(TINY_SRC), None, TINY_SRC.splitlines(True), "tiny_inception.py")
_ns = {}
exec(compile(TINY_SRC, "tiny_inception.py", "exec"), _ns)


def TinyInception(d, tag, hw):
    m = _ns["TinyInception"](d).double()
    with torch.no_grad():
        m.fc.weight.copy_(hash_tensor(tag + ".weight", (d, 192), 0.0, hw))
        m.fc.bias.copy_(hash_tensor(tag + ".bias", (d,), 0.0, 0.2))
    return m


def cleanfid_input(x):
    """clean-fid's preprocessing of images in [-1, 1]: 0..255 integers, RGB, Pillow bicubic of each
    float channel to 299x299, clip, then (x - 128) / 128."""
    px = np.clip(np.rint((x.numpy() + 1) * 127.5), 0, 255)
    if px.shape[1] == 1:
        px = np.repeat(px, 3, axis=1)
    out = np.zeros((px.shape[0], 3, 299, 299), dtype=np.float32)
    for i in range(px.shape[0]):
        for c in range(3):
            img = Image.fromarray(px[i, c].astype(np.float32), mode="F").resize((299, 299), resample=Image.BICUBIC)
            out[i, c] = np.asarray(img).clip(0, 255)
    return torch.from_numpy(out)


def inception_score(logits, splits):
    p = torch.softmax(logits, 1).numpy()
    n = p.shape[0]
    scores = []
    for s in range(splits):
        part = p[s * n // splits:(s + 1) * n // splits]
        py = part.mean(0, keepdims=True)
        scores.append(np.exp((part * (np.log(part) - np.log(py))).sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def make_inception(out):
    feats, logits = TinyInception(16, "tiny.features", 0.2), TinyInception(10, "tiny.logits", 5.0)
    torch.jit.script(feats.float()).save(os.path.join(out, "inception_tiny_features.pt"))
    torch.jit.script(logits.float()).save(os.path.join(out, "inception_tiny_logits.pt"))
    feats, logits = TinyInception(16, "tiny.features", 0.2), TinyInception(10, "tiny.logits", 5.0)
    a = hash_tensor("inception.a", (12, 1, 32, 32), 0.0, 1.0)
    b = hash_tensor("inception.b", (12, 3, 32, 32), 0.0, 1.0)
    ia, ib = cleanfid_input(a), cleanfid_input(b)
    d = {"input.a": c64(a), "input.b": c64(b), "resize.a0": ia[0, 0].clone()}
    with torch.no_grad():
        d["feat.a"] = c64(feats((ia.double() - 128) / 128))
        d["feat.b"] = c64(feats((ib.double() - 128) / 128))
        x01 = ((a + 1) / 2).clamp(0, 1).repeat(1, 3, 1, 1).float()
        x01 = torch.nn.functional.interpolate(x01, size=(299, 299), mode="bilinear", align_corners=False)
        d["logits.a"] = c64(logits(x01))
    d["fid"] = scalar64(authors_fd(d["feat.a"].numpy(), d["feat.b"].numpy()))
    m, sd = inception_score(d["logits.a"], 3)
    d["is.mean"], d["is.std"] = scalar64(m), scalar64(sd)
    print(f"inception_tiny.pt: FID {d['fid'].item():.6f}, IS {m:.6f} +- {sd:.6f}")
    save(d, os.path.join(out, "inception_tiny.pt"))


def mnist_idx(path, n):
    with gzip.open(path, "rb") as f:
        b = f.read()
    rows, cols = int.from_bytes(b[8:12], "big"), int.from_bytes(b[12:16], "big")
    return np.frombuffer(b[16:16 + n * rows * cols], dtype=np.uint8).reshape(n, rows, cols)


def write_folders(mnist_dir, a_dir, b_dir):
    """Folder A and B of folder_scores.json (see the docstring)."""
    for i, d in enumerate(mnist_idx(os.path.join(mnist_dir, "train-images-idx3-ubyte.gz"), 150)):
        Image.fromarray(d, mode="L").save(os.path.join(a_dir, f"a{i:03d}.png"))
    for i, d in enumerate(mnist_idx(os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz"), 100)):
        rgb = np.zeros((28, 30, 3), dtype=np.uint8)
        rgb[:, 1:29, :] = d[:, :, None]
        Image.fromarray(rgb, mode="RGB").save(os.path.join(b_dir, f"b{i:03d}.png"))


def make_folder_scores(out, mnist_dir):
    from score_folders import score
    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        os.makedirs(a)
        os.makedirs(b)
        write_folders(mnist_dir, a, b)
        res = score(a, b, os.path.join(out, "fad_ae_state.pth"), os.path.join(out, "inception_tiny_features.pt"),
                    os.path.join(out, "inception_tiny_logits.pt"), 3)
    print(f"folder_scores.json: {res}")
    with open(os.path.join(out, "folder_scores.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/fixtures")
    ap.add_argument("--mnist", default="testdata/mnist-small")
    ap.add_argument("--only", default="", help="folder: only folder_scores.json (from the committed networks)")
    args = ap.parse_args()
    out = args.out
    if args.only == "folder":
        make_folder_scores(out, args.mnist)
        return
    model = pth_model(AE, (1, 64), os.path.join(out, "fad_ae_state.pth"))
    x = hash_tensor("fad.x", (8, 1, 32, 32), 0.0, 1.0)
    y = hash_tensor("fad.y", (8, 1, 32, 32), 0.0, 1.0)
    d = {"input.x": c64(x), "input.y": c64(y)}
    with torch.no_grad():
        model.eval()
        d["feat.eval"] = c64(model.encode(x))
        d["recon.eval"] = c64(model(x)[0])
        model.train()
        d["feat.batch"] = c64(torch.cat([model.encode(x[:4]), model.encode(x[4:])]))
        d["feat.y"] = c64(model.encode(y))
    d["fad"] = scalar64(authors_fd(d["feat.batch"].numpy(), d["feat.y"].numpy()))
    fy = d["feat.y"].numpy()
    np.savez(os.path.join(out, "fad_ref_stats.npz"), mu=fy.mean(0), sigma=np.cov(fy, rowvar=False))
    print(f"fad_ae.pt: FAD {d['fad'].item():.6f}, |feat.eval| max {d['feat.eval'].abs().max():.4f}")
    save(d, os.path.join(out, "fad_ae.pt"))
    make_inception(out)
    make_folder_scores(out, args.mnist)


if __name__ == "__main__":
    main()
