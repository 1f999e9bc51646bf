"""A TCP proxy that changes one byte of what the source sends, at a given
offset: `flip_proxy.py LISTEN_ADDR LISTEN_PORT TO_ADDR TO_PORT OFFSET`. It
prints "ready" once it listens and forwards one connection both ways."""
import socket
import sys
import threading


def pump(src, dst, flip_at):
    seen = 0
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if flip_at is not None and seen <= flip_at < seen + len(data):
                b = bytearray(data)
                b[flip_at - seen] ^= 0x20
                data = bytes(b)
            seen += len(data)
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    laddr, lport, taddr, tport, off = sys.argv[1:6]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((laddr, int(lport)))
    ls.listen(1)
    print("ready", flush=True)
    c, _ = ls.accept()
    u = socket.create_connection((taddr, int(tport)))
    t = threading.Thread(target=pump, args=(u, c, None), daemon=True)
    t.start()
    pump(c, u, int(off))
    t.join(5)


main()
