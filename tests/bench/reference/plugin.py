#!/usr/bin/env python3
"""A Scope plugin the way the official Python plugins are written, for the
benchmark: it serves a fixed report body on a UNIX socket.

    plugin.py http10   SOCKET BODY_FILE  # volume-count.py style: UnixStreamServer,
                                         # HTTP/1.0, a new connection per request
    plugin.py threaded SOCKET BODY_FILE  # http-statistics style: ThreadingMixIn,
                                         # HTTP/1.1 keep-alive
"""
import http.server
import os
import socketserver
import sys

mode, socket_path, body_file = sys.argv[1:4]
body = open(body_file, "rb").read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1" if mode == "threaded" else "HTTP/1.0"

    def do_GET(self):
        # The logger wants a client address; UNIX sockets have none.
        self.client_address = "-"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ThreadedServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(socket_path):
    os.remove(socket_path)
server_class = ThreadedServer if mode == "threaded" else socketserver.UnixStreamServer
server_class(socket_path, Handler).serve_forever()
