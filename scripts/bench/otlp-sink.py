#!/usr/bin/env python3
"""An OTLP/HTTP trace receiver that counts and discards: the local collector for measuring what
exporting spans costs (scripts/bench/query-load.sh with EVENTLINE_TELEMETRY__OTLP_ENDPOINT).

    python3 scripts/bench/otlp-sink.py PORT     # prints requests and bytes received at exit
"""
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = {"requests": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        received["requests"] += 1
        received["bytes"] += n
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    print(f"otlp-sink: {received['requests']} exports, {received['bytes']} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
