#!/usr/bin/env python3
"""Serves the dashboard's static files on loopback with the headers a page holding an API
key needs: a strict Content-Security-Policy (its own script and styles only, calls only to
the shop's services, never framed), nosniff and no-referrer.

usage: serve-dashboard.py PORT DIRECTORY CONNECT_SOURCE...
"""
import functools
import http.server
import sys


def handler(policy):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def end_headers(self):
            self.send_header("Content-Security-Policy", policy)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cache-Control", "no-cache")
            super().end_headers()

    return Handler


def main():
    port, directory, *connect = sys.argv[1:]
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        f"connect-src {' '.join(connect) or chr(39) + 'self' + chr(39)}; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )
    served = functools.partial(handler(policy), directory=directory)
    with http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), served) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
