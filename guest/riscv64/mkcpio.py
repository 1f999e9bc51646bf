#!/usr/bin/python3
"""Write a newc cpio archive (an initramfs) from a gen_init_cpio-style list:
  dir  NAME MODE UID GID
  nod  NAME MODE UID GID c|b MAJ MIN
  file NAME SRC MODE UID GID
  slink NAME TARGET MODE UID GID
usage: mkcpio.py LIST > out.cpio   (no root needed for device nodes)"""
import stat
import sys


def entry(out, ino, name, mode, uid, gid, data=b"", rdev=(0, 0)):
    name_b = name.lstrip("/").encode() + b"\0"
    hdr = "070701" + "".join(f"{v:08x}" for v in (
        ino, mode, uid, gid, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0))
    out.write(hdr.encode() + name_b)
    out.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
    out.write(data)
    out.write(b"\0" * ((4 - len(data) % 4) % 4))


def main():
    out = sys.stdout.buffer
    ino = 1
    for line in open(sys.argv[1]):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if f[0] == "dir":
            entry(out, ino, f[1], stat.S_IFDIR | int(f[2], 8), int(f[3]), int(f[4]))
        elif f[0] == "nod":
            kind = stat.S_IFCHR if f[5] == "c" else stat.S_IFBLK
            entry(out, ino, f[1], kind | int(f[2], 8), int(f[3]), int(f[4]),
                  rdev=(int(f[6]), int(f[7])))
        elif f[0] == "slink":
            entry(out, ino, f[1], stat.S_IFLNK | int(f[3], 8), int(f[4]), int(f[5]),
                  f[2].encode())
        elif f[0] == "file":
            data = open(f[2], "rb").read()
            entry(out, ino, f[1], stat.S_IFREG | int(f[3], 8), int(f[4]), int(f[5]), data)
        else:
            sys.exit(f"mkcpio: unknown entry {f[0]!r}")
        ino += 1
    entry(out, 0, "TRAILER!!!", 0, 0, 0)
    out.write(b"\0" * ((512 - out.tell() % 512) % 512) if out.seekable() else b"")


if __name__ == "__main__":
    main()
