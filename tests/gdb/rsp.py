#!/usr/bin/env python3
"""A raw GDB remote-serial-protocol client, as lab graders (MIT's gradelib.py) talk to
QEMU's stub: no gdb, no acknowledgements sent, packets matched with a regular expression.

    rsp.py PORT SCENARIO [ARG...]

Scenarios (each prints what it saw, one `key: value` line per fact, and exits 0):
    gradelib ADDR   `?`, `Z1,ADDR,1`, `c`: the stop reply, then EIP by `p8` and by `g`
    run             `c` with no breakpoint: the reply (the guest's exit, `W..`)
    awatch ADDR     `Z4,ADDR,4`, `c`: the reply, the word at ADDR (`m`), EBX before, EIP after
    interrupt       `c`, then a Ctrl-C byte: the reply; then `D` (detach)
    attach          `?` to a guest that is already running, then `D` (detach)
    garbage         malformed packets and bytes, then `?`: the stub still answers
    idle            `?`, then nothing for 3 seconds (the stub waits for a request)
"""
import re
import socket
import sys
import time


class Client:
    def __init__(self, port, timeout=20):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.buf = ""

    def send(self, cmd):
        pkt = "$%s#%02x" % (cmd, sum(map(ord, cmd)) % 256)
        self.sock.sendall(pkt.encode("ascii"))

    def send_raw(self, data):
        self.sock.sendall(data)

    def reply(self):
        """The next packet's payload (acks and other noise skipped)."""
        while True:
            m = re.search(r"\$([^#]*)#[0-9a-fA-F]{2}", self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m.group(1)
            data = self.sock.recv(4096).decode("ascii", "replace")
            if data == "":
                raise EOFError("the stub closed the connection")
            self.buf += data


def le32(hexstr):
    return int.from_bytes(bytes.fromhex(hexstr[:8]), "little")


def main():
    port, scenario, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    c = Client(port)
    if scenario == "gradelib":
        addr = int(args[0], 0)
        c.send("?")
        print("status:", c.reply())
        c.send("Z1,%x,1" % addr)
        print("Z1:", c.reply())
        c.send("c")
        print("stop:", c.reply())
        c.send("p8")
        print("p8 eip: %#x" % le32(c.reply()))
        c.send("g")
        g = c.reply()
        print("g eip: %#x" % le32(g[8 * 8:]))
        c.send("z1,%x,1" % addr)
        print("z1:", c.reply())
        c.send("k")
    elif scenario == "run":
        c.send("c")
        print("stop:", c.reply())
    elif scenario == "awatch":
        addr = int(args[0], 0)
        c.send("p3")
        print("entry ebx: %#x" % le32(c.reply()))
        c.send("Z4,%x,4" % addr)
        print("Z4:", c.reply())
        c.send("c")
        print("stop:", c.reply())
        c.send("m%x,4" % addr)
        print("value: %#x" % le32(c.reply()))
        c.send("p8")
        print("eip: %#x" % le32(c.reply()))
        c.send("k")
    elif scenario == "interrupt":
        c.send("c")
        time.sleep(0.2)
        c.send_raw(b"\x03")
        print("stop:", c.reply())
        c.send("D")
        print("D:", c.reply())
    elif scenario == "attach":
        c.send("?")
        print("status:", c.reply())
        c.send("D")
        print("D:", c.reply())
    elif scenario == "idle":
        c.send("?")
        print("status:", c.reply())
        time.sleep(3)
    elif scenario == "garbage":
        c.send_raw(b"$zz#00")  # bad checksum
        c.send_raw(b"\x00\xff+-+")
        c.send("Zq,nonsense")
        c.send("m1234")
        c.send("?")
        while True:
            r = c.reply()
            if r.startswith("T"):
                print("status:", r)
                break
        c.send("D")
        print("D:", c.reply())
    else:
        sys.exit("unknown scenario " + scenario)


if __name__ == "__main__":
    main()
