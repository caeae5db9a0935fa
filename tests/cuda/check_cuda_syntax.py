#!/usr/bin/env python3
"""Compiles the CUDA-only code of a CPU build for syntax: every source with `GPUJOB_WITH_CUDA`
blocks, with its own compile command from compile_commands.json plus -DGPUJOB_WITH_CUDA
-DGPUJOB_WITH_FUSED_KERNELS -fsyntax-only, against libtorch's c10/cuda headers and the CUDA
toolkit's; and every kernel file (src/**/*.cu) with the toolkit's nvcc for sm_90. It catches a
CUDA path that no longer compiles on a machine without a CUDA libtorch (the GPU build is the real
check).

    check_cuda_syntax.py BUILD_DIR [CUDA_HOME=/usr/local/cuda]

Exit 0 all compiled, 1 a file failed (its errors are printed), 77 skipped (CUDA build, or no CUDA
toolkit or c10/cuda headers here).
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile

SKIP = 77


def main() -> int:
    build = sys.argv[1]
    cuda_home = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("CUDA_HOME", "/usr/local/cuda")
    with open(os.path.join(build, "compile_commands.json")) as f:
        commands = json.load(f)
    if any("-DGPUJOB_WITH_CUDA" in c["command"] for c in commands):
        print("skipped: this is a CUDA build, which compiles the CUDA code for real")
        return SKIP
    if not os.path.exists(os.path.join(cuda_home, "include", "cuda_runtime_api.h")):
        print(f"skipped: no CUDA toolkit headers under {cuda_home}")
        return SKIP
    candidates = [c for c in commands if os.path.exists(c["file"])
                  and "GPUJOB_WITH_CUDA" in open(c["file"], encoding="utf-8").read()]
    if not candidates:
        print("skipped: no source has CUDA-only code")
        return SKIP
    failed = 0
    with tempfile.TemporaryDirectory() as shim:
        # A CPU libtorch ships c10/cuda headers but not the file its CMake generates for CUDA builds.
        os.makedirs(os.path.join(shim, "c10", "cuda", "impl"))
        with open(os.path.join(shim, "c10", "cuda", "impl", "cuda_cmake_macros.h"), "w") as f:
            f.write("#pragma once\n")
        for entry in candidates:
            args = shlex.split(entry["command"])
            kept, skip_next = [], False
            for a in args:
                if skip_next:
                    skip_next = False
                    continue
                if a in ("-o", "-MF", "-MT", "-MQ"):
                    skip_next = True
                    continue
                if a in ("-c", "-MD", "-MMD") or a == entry["file"]:
                    continue
                kept.append(a)
            cmd = kept + ["-fsyntax-only", "-DGPUJOB_WITH_CUDA", "-DGPUJOB_WITH_FUSED_KERNELS", "-I" + shim,
                          "-isystem", os.path.join(cuda_home, "include"), entry["file"]]
            result = subprocess.run(cmd, cwd=entry["directory"], capture_output=True, text=True)
            errors = [line for line in result.stderr.splitlines() if "error" in line]
            if result.returncode != 0:
                if any("c10/cuda" in line and "No such file" in line for line in errors):
                    print("skipped: this libtorch has no c10/cuda headers")
                    return SKIP
                failed += 1
                print(f"FAILED {entry['file']}:")
                print("\n".join(errors[:20]))
            else:
                print(f"ok {os.path.relpath(entry['file'], entry['directory'])}")
        failed += compile_kernels(cuda_home, shim)
    return 1 if failed else 0


def compile_kernels(cuda_home: str, scratch: str) -> int:
    """nvcc-compiles every .cu file of the sources (they include no libtorch header)."""
    nvcc = os.path.join(cuda_home, "bin", "nvcc")
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src")
    kernels = sorted(os.path.join(d, f) for d, _, files in os.walk(source) for f in files if f.endswith(".cu"))
    if not kernels:
        return 0
    if not os.access(nvcc, os.X_OK):
        print(f"kernels not compiled: no nvcc at {nvcc}")
        return 0
    failed = 0
    for cu in kernels:
        cmd = [nvcc, "-std=c++17", "-arch=sm_90", "-c", cu, "-o", os.path.join(scratch, "kernel.o")]
        result = subprocess.run(cmd, capture_output=True, text=True)
        name = os.path.relpath(cu, os.path.join(source, ".."))
        if result.returncode != 0:
            failed += 1
            print(f"FAILED {name}:")
            print("\n".join(result.stderr.splitlines()[:20]))
        else:
            print(f"ok {name} (nvcc)")
    return failed


if __name__ == "__main__":
    sys.exit(main())
