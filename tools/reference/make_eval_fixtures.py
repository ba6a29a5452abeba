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
The AE is written from ESVAE-SPEC (Evaluation, FAD), not copied from the authors' code.
"""

import argparse
import os

import numpy as np
import torch
import torch.nn as nn
from scipy import linalg

from make_baseline_fixtures import pth_model
from make_fixtures import c64, hash_tensor, save, scalar64


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


def authors_fd(f1, f2, eps=1e-6):
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + off).dot(s2 + off))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/fixtures")
    out = ap.parse_args().out
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
    print(f"fad_ae.pt: FAD {d['fad'].item():.6f}, |feat.eval| max {d['feat.eval'].abs().max():.4f}")
    save(d, os.path.join(out, "fad_ae.pt"))


if __name__ == "__main__":
    main()
