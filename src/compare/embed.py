#!/usr/bin/env python3
"""Embed a source file in vessel as a C array (embed.py SRC OUT NAME), so
`vessel compare` compiles the exact checked-in source wherever the binary
is: workload.c and the KVM row's guest (bare_start.S, bare_libc.c, bare.ld)."""
import sys

src, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, "rb").read()
with open(out, "w") as f:
    f.write("/* generated from %s by embed.py */\n#include <stddef.h>\n" % src.split("/")[-1])
    f.write("const char %s[] = {\n" % name)
    for i in range(0, len(data), 16):
        f.write("    " + ", ".join(str(b) for b in data[i:i + 16]) + ",\n")
    f.write("    0};\nconst size_t %s_len = %d;\n" % (name, len(data)))
