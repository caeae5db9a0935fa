#!/usr/bin/env python3
"""Compiles the CUDA-only code of a CPU build for syntax: every source with `GPUJOB_WITH_CUDA`
blocks, with its own compile command from compile_commands.json plus -DGPUJOB_WITH_CUDA
-fsyntax-only, against libtorch's c10/cuda headers and the CUDA toolkit's. It catches a CUDA path
that no longer compiles on a machine without a CUDA libtorch (the GPU build is the real check).

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
            cmd = kept + ["-fsyntax-only", "-DGPUJOB_WITH_CUDA", "-I" + shim,
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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
