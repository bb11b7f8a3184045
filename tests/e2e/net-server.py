#!/usr/bin/python3
"""A local stand-in for the internet in the network tests and tools/bench-net.

    net-server.py DIR [--bind ADDR]

Serves DIR over HTTP/1.1 on ADDR (default 127.0.0.1), port chosen by the kernel, printed on stdout once it
accepts connections (the tests wait on that line, not on a clock). GET and HEAD serve files; POST answers with
"<bytes> <sha256>" of the request body, decoding Content-Length and chunked bodies. Keep-alive works, so a
client can measure per-connection cost with or without reusing connections.
"""
import hashlib
import http.server
import os
import socketserver
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        # sendfile(2): the server must not be what limits the throughput the benchmark compares
        outputfile.flush()
        self.connection.sendfile(source)

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_POST(self):
        data = self._body()
        out = ("%d %s\n" % (len(data), hashlib.sha256(data).hexdigest())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    root = sys.argv[1]
    addr = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--bind" else "127.0.0.1"
    os.chdir(root)
    srv = Server((addr, 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
