#!/usr/bin/env python3
"""Adapt gotch's generated C++ to the installed libtorch (called by setup.sh).

gotch v0.9.1's libtch/torch_api_generated.cpp.h is generated for libtorch 2.1.0. Against other
headers a few of its ~2,500 functions do not compile (a changed signature, a removed op). This script
compiles the copy's libtch/torch_api.cpp (which includes that file) with -fsyntax-only against the
installed headers, maps every error to the generated function it is in, and replaces each such
function by one with the same C signature that only sets gotch's error slot (torch_last_err, the
path gotch's PROTECT uses for a caught C++ exception), so the Go call returns the error
"NAME: not available in libtorch X.Y.Z". It repeats until the file compiles.

The names go to libtch/../unavailable.txt (one a line, empty when nothing was replaced). The result is
cached per libtorch version and headers: CACHE/gotch-adapt/KEY.txt, where KEY hashes the version, the
compiler flags, the generated file and the header tree, so a second set-up with the same libtorch
applies the list without compiling.

usage: adapt_gotch.py GOTCH_DIR VERSION CACHE_DIR CXXFLAGS...
"""
import hashlib
import os
import re
import subprocess
import sys

GEN = "libtch/torch_api_generated.cpp.h"
FUNC_RE = re.compile(r"^([A-Za-z_][\w \*]*?)\s*\b(atg_\w+)\((.*)\)\s*\{\s*$")


def parse(text):
    """Returns a list of (name, start, end, ret, params) with inclusive line indexes."""
    lines = text.split("\n")
    funcs, i = [], 0
    while i < len(lines):
        m = FUNC_RE.match(lines[i])
        if m:
            j = i + 1
            while j < len(lines) and lines[j] != "}":
                j += 1
            funcs.append((m.group(2), i, j, m.group(1).strip(), m.group(3)))
            i = j
        i += 1
    return lines, funcs


def stub(name, ret, params, version):
    op = name[len("atg_"):]
    msg = f"{op}: not available in libtorch {version}"
    body = [f"{ret} {name}({params}) {{",
            "  // esvae: replaced by scripts/adapt_gotch.py, the generated call does not compile against this libtorch.",
            f'  torch_last_err = strdup("{msg}");']
    if ret != "void":
        body.append(f"  return ({ret})0;")
    body.append("}")
    return body


def apply(lines, funcs, names, version):
    by_start = {f[1]: f for f in funcs if f[0] in names}
    out, i = [], 0
    while i < len(lines):
        f = by_start.get(i)
        if f:
            out.extend(stub(f[0], f[3], f[4], version))
            i = f[2] + 1
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out)


def header_digest(cxxflags):
    h = hashlib.sha256()
    for flag in cxxflags:
        if not flag.startswith("-I"):
            continue
        root = flag[2:]
        for d, subdirs, files in os.walk(root):
            subdirs.sort()
            for f in sorted(files):
                p = os.path.join(d, f)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                h.update(f"{os.path.relpath(p, root)}|{st.st_size}|{int(st.st_mtime)}\n".encode())
    return h.hexdigest()


def failing(gotch, cxxflags, funcs):
    """Compiles torch_api.cpp once; returns the generated functions with errors and the raw log."""
    cmd = ["g++", "-fsyntax-only", "-w", "-fmax-errors=0", f"-I{gotch}/libtch"] + cxxflags + [f"{gotch}/libtch/torch_api.cpp"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode == 0:
        return set(), ""
    bad = set()
    err_re = re.compile(re.escape(os.path.basename(GEN)) + r":(\d+):\d+: error")
    for m in err_re.finditer(p.stderr):
        line = int(m.group(1)) - 1
        for name, s, e, _, _ in funcs:
            if s <= line <= e:
                bad.add(name)
                break
    return bad, p.stderr


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    gotch, version, cache = sys.argv[1], sys.argv[2], sys.argv[3]
    cxxflags = sys.argv[4:]
    path = os.path.join(gotch, GEN)
    orig = open(path).read()
    lines, funcs = parse(orig)
    if len(funcs) < 2000:
        sys.exit(f"adapt_gotch: found only {len(funcs)} generated functions in {path}; is this gotch v0.9.1?")
    key = hashlib.sha256("\n".join([version, " ".join(cxxflags), hashlib.sha256(orig.encode()).hexdigest(),
                                    header_digest(cxxflags)]).encode()).hexdigest()[:24]
    cached = os.path.join(cache, "gotch-adapt", key + ".txt")
    if os.path.exists(cached):
        names = [l.strip() for l in open(cached) if l.strip()]
        print(f"setup: gotch adapted to libtorch {version} from the cache: {len(names)} unavailable function(s)", file=sys.stderr)
    else:
        print(f"setup: compiling gotch's generated C++ against libtorch {version} headers to find what does not compile (a minute or two)...", file=sys.stderr)
        names = set()
        for _ in range(10):
            text = apply(lines, funcs, names, version)
            open(path, "w").write(text)
            bad, log = failing(gotch, cxxflags, funcs)
            if not bad and not log:
                break
            if not bad:
                open(path, "w").write(orig)
                sys.stderr.write(log[-4000:])
                sys.exit("adapt_gotch: gotch's C++ fails to compile outside its generated functions (see above)")
            names |= bad
        else:
            open(path, "w").write(orig)
            sys.exit("adapt_gotch: still failing after 10 rounds")
        names = sorted(n[len("atg_"):] for n in names)
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        with open(cached + ".tmp", "w") as f:
            f.write("".join(n + "\n" for n in names))
        os.replace(cached + ".tmp", cached)
    text = apply(lines, funcs, {"atg_" + n for n in names}, version)
    if text != orig:
        open(path, "w").write(text)
    with open(os.path.join(gotch, "unavailable.txt"), "w") as f:
        f.write(f"# gotch functions not available in libtorch {version} (scripts/adapt_gotch.py)\n")
        f.write("".join(n + "\n" for n in names))
    if names:
        print(f"setup: {len(names)} gotch function(s) not available in libtorch {version}: {', '.join(names)}", file=sys.stderr)
    else:
        print(f"setup: every gotch function compiles against libtorch {version}", file=sys.stderr)


if __name__ == "__main__":
    main()
