#!/usr/bin/env python3
"""A webhook receiver for scripts/demo: prints each event it gets (type,
webhook-id, the start of its signature) to stderr, appends its type to the
file named by argv[1], answers 204, and prints its port on stdout."""
import http.server
import json
import sys
import threading

log_path = sys.argv[1]
lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        event = json.loads(body)
        signature = self.headers.get("webhook-signature", "")
        line = (
            f"  <- webhook {event['type']} {self.headers.get('webhook-id')} "
            f"(signed {signature[:14]}...)\n"
        )
        with lock:  # one whole line at a time from concurrent deliveries
            sys.stderr.write(line)
            sys.stderr.flush()
            with open(log_path, "a") as log:
                log.write(event["type"] + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(server.server_address[1], flush=True)
server.serve_forever()
