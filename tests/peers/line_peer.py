#!/usr/bin/env python3
"""A TCP peer for the tcp_line_bus tests that is not vigil.

Listens on 127.0.0.1 on a free port, prints the port on its first line, serves one connection
as the scenario says, then exits (after 20 s at the latest).

  lines    frames split across writes, one ending in CRLF; then waits for the client to close
  close    one frame and an unterminated one, then closes the connection
  garbage  100,000 bytes without a newline; then waits for the client to close
  exact    frames of 4 bytes (one with CRLF), then one of 5; then waits for the client to close
"""
import socket
import sys
import time


def wait_closed(conn):
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass


def main():
    scenario = sys.argv[1]
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(20)
    print(server.getsockname()[1], flush=True)
    conn, _ = server.accept()
    conn.settimeout(20)
    if scenario == "lines":
        conn.sendall(b"alpha\nbe")
        time.sleep(0.05)
        conn.sendall(b"ta\r\ngamma\n")
        wait_closed(conn)
    elif scenario == "close":
        conn.sendall(b"only\npartial")
        conn.close()
    elif scenario == "exact":
        conn.sendall(b"abcd\r\nefgh\nijklm\n")
        wait_closed(conn)
    elif scenario == "garbage":
        try:
            conn.sendall(b"x" * 100_000)
        except OSError:
            pass  # the client may close before everything is sent
        wait_closed(conn)
    else:
        sys.exit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main()
