#!/usr/bin/env python3
"""Embed workload.c in vessel as a C array, so `vessel compare` compiles the
exact checked-in source wherever the binary is."""
import sys

src, out = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
with open(out, "w") as f:
    f.write("/* generated from workload.c by embed.py */\n#include <stddef.h>\n")
    f.write("const char compare_workload_source[] = {\n")
    for i in range(0, len(data), 16):
        f.write("    " + ", ".join(str(b) for b in data[i:i + 16]) + ",\n")
    f.write("    0};\nconst size_t compare_workload_source_len = %d;\n" % len(data))
