#!/usr/bin/env python3
"""Print, as JSON, what the reference `gguf` package (gguf==0.19.0) reads from a GGUF file:
every tensor's type, element count and byte size, and the architecture. Used by slm's tests to
check `slm show` against the reference reader."""
import json
import sys

import gguf

r = gguf.GGUFReader(sys.argv[1])
out = {
    "architecture": r.fields["general.architecture"].contents(),
    "tensors": {
        t.name: {"type": t.tensor_type.name, "elements": int(t.n_elements), "bytes": int(t.n_bytes)}
        for t in r.tensors
    },
}
json.dump(out, sys.stdout)
