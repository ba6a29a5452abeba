"""The project's PyTorch reference scorer of image folders: FAD, FID and IS of the images of DIR
against those of REF, the way `esvae eval --images DIR --ref REF` computes them (eval/folder.go),
written from the protocols rather than from the Go code, so that the Go scorer can be checked
against it (eval/folder_ref_test.go, with the fixture make_eval_fixtures.py writes).

    python tools/reference/score_folders.py DIR REF --fad-model fad_ae_state.pth \
        --inception inception_features.pt [--inception-logits inception_logits.pt --is-splits 10]

Reading a folder (as pytorch-fid and clean-fid do): its .png/.jpg/.jpeg files in name order,
Pillow-decoded to RGB; a non-square image centre-cropped to its shorter side (torchvision's
CenterCrop placement), resized with Pillow's bilinear filter when its side is not the target's,
converted to grey with Pillow's convert("L") when one channel is wanted; values 2 p / 255 - 1.
  FAD  the authors' feature autoencoder (AE of make_eval_fixtures.py, a state_dict in the authors'
       layout) at its own input (C x 32 x 32), batch statistics in its batch norms (the authors'
       protocol), both folders in batches of 128; mean and np.cov of the features, the authors'
       Frechet distance (scipy sqrtm).
  FID  both folders at the shape of DIR's first image (1 channel if it is grey), clean-fid's
       preprocessing (0..255 integers, RGB, Pillow bicubic of each float channel to 299x299, clip,
       (x - 128) / 128), the TorchScript feature network in batches of 50; the same distance.
  IS   DIR at its first image's shape, [0, 1], grey repeated to RGB, bilinear to 299x299
       (F.interpolate, align_corners False), the TorchScript logits network; exp of the mean KL
       per split.
Prints the scores as JSON.
"""

import argparse
import json
import os

import numpy as np
import torch
from PIL import Image

from make_eval_fixtures import AE, authors_fd, cleanfid_input, inception_score


def folder_files(d):
    return sorted(f for f in os.listdir(d)
                  if f.lower().endswith((".png", ".jpg", ".jpeg")) and os.path.isfile(os.path.join(d, f)))


def first_shape(d):
    img = Image.open(os.path.join(d, folder_files(d)[0]))
    return (1 if img.mode in ("L", "I;16", "I") else 3), min(img.size)


def read_folder(d, c, side):
    """The images of d as a float64 tensor (N, c, side, side) in [-1, 1]."""
    out = []
    for f in folder_files(d):
        img = Image.open(os.path.join(d, f)).convert("RGB")
        w, h = img.size
        if w != h:
            s = min(w, h)
            left, top = int(round((w - s) / 2.0)), int(round((h - s) / 2.0))
            img = img.crop((left, top, left + s, top + s))
        if img.size[0] != side:
            img = img.resize((side, side), resample=Image.BILINEAR)
        if c == 1:
            img = img.convert("L")
        a = np.asarray(img, dtype=np.float64)
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        out.append(a / 255.0 * 2 - 1)
    return torch.from_numpy(np.stack(out))


def batched(x, n):
    return [x[i:i + n] for i in range(0, x.shape[0], n)]


def fad(x, y, state):
    sd = torch.load(state, map_location="cpu")
    model = AE(sd["encoder.0.0.weight"].shape[1], sd["latent_layer.weight"].shape[0])
    model.load_state_dict(sd)
    model.train()  # batch statistics, the authors' protocol; no_grad leaves the running ones unused
    with torch.no_grad():
        fx = torch.cat([model.encode(b.float()) for b in batched(x, 128)]).double().numpy()
        fy = torch.cat([model.encode(b.float()) for b in batched(y, 128)]).double().numpy()
    return authors_fd(fx, fy)


def fid(x, y, network):
    net = torch.jit.load(network, map_location="cpu").eval()
    with torch.no_grad():
        def feats(z):
            return torch.cat([net((cleanfid_input(b) - 128) / 128) for b in batched(z, 50)]).double().numpy()
        return authors_fd(feats(x), feats(y))


def inception_score_of(x, network, splits):
    net = torch.jit.load(network, map_location="cpu").eval()
    with torch.no_grad():
        logits = []
        for b in batched(x, 50):
            x01 = ((b + 1) / 2).clamp(0, 1).float()
            if x01.shape[1] == 1:
                x01 = x01.repeat(1, 3, 1, 1)
            x01 = torch.nn.functional.interpolate(x01, size=(299, 299), mode="bilinear", align_corners=False)
            logits.append(net(x01).double())
    return inception_score(torch.cat(logits), splits)


def score(images, ref, fad_model=None, inception=None, inception_logits=None, is_splits=10):
    res = {"images": len(folder_files(images)), "ref": len(folder_files(ref))}
    if fad_model:
        sd = torch.load(fad_model, map_location="cpu")
        c = sd["encoder.0.0.weight"].shape[1]
        res["fad"] = fad(read_folder(images, c, 32), read_folder(ref, c, 32), fad_model)
    if inception:
        c, side = first_shape(images)
        res["fid"] = fid(read_folder(images, c, side), read_folder(ref, c, side), inception)
    if inception_logits:
        c, side = first_shape(images)
        res["is_mean"], res["is_std"] = inception_score_of(read_folder(images, c, side), inception_logits, is_splits)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images")
    ap.add_argument("ref")
    ap.add_argument("--fad-model")
    ap.add_argument("--inception")
    ap.add_argument("--inception-logits")
    ap.add_argument("--is-splits", type=int, default=10)
    a = ap.parse_args()
    print(json.dumps(score(a.images, a.ref, a.fad_model, a.inception, a.inception_logits, a.is_splits), indent=1))


if __name__ == "__main__":
    main()
