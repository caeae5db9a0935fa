#!/usr/bin/env python3
"""Reads an activation file written by test_activation_file with h5py and checks it the way a
Python user would read it: shapes, dtypes, ids, strings and the known test values."""
import sys

import h5py
import numpy as np


def expected(layer, position, row, col):
    p = {"last": 1, "all": 2}.get(position, 3)
    return layer * 100 + p * 10 + col + (row % 64) / 8.0


def main(path, dtype, string_ids):
    tokens = [3, 1, 4, 1, 5, 7, 2]  # produced per sample (see activation_fixture.hpp)
    with h5py.File(path, "r") as f:
        assert int(f.attrs["complete"]) == 1
        assert f.attrs["model"] == "tiny", f.attrs["model"]
        assert f.attrs["dtype"] == dtype
        ids = f["samples/id"][:]
        if string_ids:
            assert [i.decode() for i in ids] == ["row-%d" % (3 * i) for i in range(7)], ids
        else:
            assert ids.dtype == np.int64 and list(ids) == list(range(100, 107)), ids
        offsets = f["samples/token_offset"][:]
        assert list(f["samples/num_tokens"][:]) == tokens
        for layer, position in [(0, "last"), (0, "all"), (2, "mean")]:
            data = f["activations/layer_%d/%s" % (layer, position)]
            assert data.dtype == np.dtype(dtype), data.dtype
            values = data[:].astype(np.float64)
            rows = [r for s in range(7) for r in range(offsets[s], offsets[s] + tokens[s])] if position == "all" else range(7)
            for r in rows:
                want = [expected(layer, position, r, c) for c in range(values.shape[1])]
                assert np.array_equal(values[r], want), (layer, position, r, values[r], want)
        if "completion" in f["samples"]:
            completions = [c.decode() if isinstance(c, bytes) else c for c in f["samples/completion"][:]]
            assert completions[1] == "\\box{B}", completions
            prompts = [c.decode() if isinstance(c, bytes) else c for c in f["samples/prompt"][:]]
            assert prompts[0] == "prompt 0 \u00e9", prompts[0]
            assert list(f["samples/label"][:]) == [i % 3 - 1 for i in range(7)]
    print("h5py check passed:", path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] == "1")
