"""An HTTP/1.1 server for the HTTP statistics tests that reads and writes
through the vectored and message syscalls real servers use: connections
alternate between readv(2) + sendmsg(2) and recvmsg(2) + writev(2). GET /
answers 200, POST / 202, GET /status/NNN answers NNN, anything else 404; connections stay open until the
client closes them. It prints its port, then serves until killed."""

import os
import socket
import threading


def answer(request_line):
    method, path = request_line.split(b" ")[:2]
    if path.startswith(b"/status/"):
        return path[len(b"/status/"):] + b" Status", b"status\n"
    if path != b"/":
        return b"404 Not Found", b"missing\n"
    if method == b"POST":
        return b"202 Accepted", b"accepted\n"
    return b"200 OK", b"hello\n"


def serve(conn, vectored_reads):
    buffer = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in buffer:
                if vectored_reads:
                    chunk = bytearray(4096)
                    n = os.readv(conn.fileno(), [chunk])
                    chunk = bytes(chunk[:n])
                else:
                    chunk = bytearray(4096)
                    n, _, _, _ = conn.recvmsg_into([chunk])
                    chunk = bytes(chunk[:n])
                if not chunk:
                    return
                buffer += chunk
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            status, body = answer(head.split(b"\r\n")[0])
            header = b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
            if vectored_reads:
                conn.sendmsg([header, body])
            else:
                os.writev(conn.fileno(), [header, body])


def main():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print("port", listener.getsockname()[1], flush=True)
    vectored = False
    while True:
        conn, _ = listener.accept()
        vectored = not vectored
        threading.Thread(target=serve, args=(conn, vectored), daemon=True).start()


main()
