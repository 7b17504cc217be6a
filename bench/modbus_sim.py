"""A minimal Modbus TCP server for bench/sensor_poll_bench.sh: answers Read
Holding Registers (0x03) and Read Input Registers (0x04) for N registers whose
values move like noisy sensors (a slow sine per register plus noise, updated
on every read; unsigned 16-bit, scaled by 100). Other function codes get an
"illegal function" exception. One thread per client. Standard library only.
"""
import argparse
import math
import random
import socket
import struct
import threading
import time


def serve_client(conn, registers):
    rng = random.Random(0)
    start = time.monotonic()
    with conn:
        buf = b""
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while len(buf) >= 7:
                tid, proto, length, unit = struct.unpack(">HHHB", buf[:7])
                if len(buf) < 6 + length:
                    break
                pdu, buf = buf[7:6 + length], buf[6 + length:]
                fc = pdu[0]
                if fc in (3, 4) and len(pdu) == 5:
                    addr, count = struct.unpack(">HH", pdu[1:5])
                    if count < 1 or count > 125 or addr + count > registers:
                        reply = bytes([fc | 0x80, 2])  # illegal data address
                    else:
                        t = time.monotonic() - start
                        vals = [
                            max(0, min(65535, int(100 * (50 + 10 * math.sin(0.05 * t + 0.1 * r)
                                                          + rng.gauss(0, 1)))))
                            for r in range(addr, addr + count)
                        ]
                        reply = bytes([fc, 2 * count]) + struct.pack(f">{count}H", *vals)
                else:
                    reply = bytes([fc | 0x80, 1])  # illegal function
                conn.sendall(struct.pack(">HHHB", tid, proto, len(reply) + 1, unit) + reply)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=15020)
    ap.add_argument("--registers", type=int, default=500)
    a = ap.parse_args()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.port))
    srv.listen(4)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_client, args=(conn, a.registers), daemon=True).start()


if __name__ == "__main__":
    main()
