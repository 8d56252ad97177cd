"""The python upstream: `python3 server.py PORT` serves, with the standard
library's http.server, a generic app that answers with what Python's own
parsers read from the request (the echo format is in ../doc.go).

  - the query and urlencoded bodies: urllib.parse.parse_qs(keep_blank_values=True),
    which splits on "&" only (since 3.9.2) and keeps "accountId[]" as a key;
  - JSON bodies (application/json or application/*+json, as Flask's is_json): json;
  - multipart bodies: the email package;
  - the method: the received one, the X-HTTP-Method-Override, X-HTTP-Method and
    X-Method-Override headers and _method from the query and the body, on any
    method: a generic app, not a framework's rule.
"""

import email.parser
import email.policy
import email.utils
import http.cookies
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 2 << 20
OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")


class BadBody(Exception):
    """The body cannot be read to its end; the connection is closed."""


def leaves(value):
    """The string leaves of a parsed value."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v)]
    if isinstance(value, str):
        return [value]
    return [json.dumps(value)]


def accounts(params):
    """Every value of the key accountId, under any spelling of its case."""
    if not isinstance(params, dict):
        return []
    return [
        leaf
        for key, value in params.items()
        if key.lower() == "accountid" or key.upper() == "ACCOUNTID"
        for leaf in leaves(value)
    ]


def cookie_accounts(fields):
    """accountId cookies as the standard library's SimpleCookie reads them
    (the last of one name wins; a field it cannot parse is dropped whole)
    and as Django's parse_cookie does (split on ";", unquoted, last wins)."""
    out = []
    for field in fields:
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(field)
        except http.cookies.CookieError:
            jar = {}
        out += accounts({k: m.value for k, m in jar.items()})
        django = {}
        for chunk in field.split(";"):
            key, val = chunk.split("=", 1) if "=" in chunk else ("", chunk)
            key, val = key.strip(), val.strip()
            if key or val:
                django[key] = http.cookies._unquote(val)
        out += accounts(django)
    return out


def strings(values):
    """Values of a parsed key that are strings (parse_qs: always a list)."""
    if isinstance(values, list):
        return [v for v in values if isinstance(v, str)]
    return [values] if isinstance(values, str) else []


def unique(values):
    return list(dict.fromkeys(values))


def parse_multipart(content_type, body):
    """The form fields of a multipart body, as parse_qs would give them."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    fields = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is None or part.get_filename() is not None:
            continue
        name = email.utils.collapse_rfc2231_value(name)
        payload = part.get_payload(decode=True) or b""
        fields.setdefault(name, []).append(payload.decode("utf-8", "replace"))
    return fields


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm
    # each keep-alive answer would wait for the peer's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def __getattr__(self, name):
        # http.server dispatches to do_<METHOD>; every method is echoed.
        if name.startswith("do_"):
            return self.echo
        raise AttributeError(name)

    def log_message(self, format, *args):
        pass  # no access log; errors still go to stderr

    def read_body(self):
        """The whole body, by Content-Length or chunked; at most MAX_BODY."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadBody("invalid Content-Length")
        if length < 0 or length > MAX_BODY:
            raise BadBody("Content-Length out of range")
        return self.rfile.read(length)

    def read_chunked(self):
        body = b""
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadBody("invalid chunk size")
            if size == 0:
                break
            if len(body) + size > MAX_BODY:
                raise BadBody("body too large")
            body += self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after the chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return body

    def echo(self):
        try:
            body = self.read_body()
        except BadBody:
            body = b""
            self.close_connection = True

        target = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(target.query, keep_blank_values=True)

        content_type = self.headers.get("Content-Type", "")
        media_type = content_type.split(";")[0].strip().lower()
        form = {}
        try:
            if media_type == "application/x-www-form-urlencoded":
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            elif media_type == "application/json" or (
                media_type.startswith("application/") and media_type.endswith("+json")
            ):
                form = json.loads(body)
            elif media_type == "multipart/form-data":
                form = parse_multipart(content_type, body)
        except Exception:
            form = {}  # unreadable: the app reads nothing from it

        methods = [self.command]
        for name in OVERRIDE_HEADERS:
            methods += [v.upper() for v in self.headers.get_all(name, [])]
        methods += [v.upper() for v in strings(query.get("_method"))]
        if isinstance(form, dict):
            methods += [v.upper() for v in strings(form.get("_method"))]

        header = {}
        for name, value in self.headers.items():
            header.setdefault(name, []).append(value)

        # urlsplit reads "//host/p" as a host and the path "/p"; the request
        # target up to "?" is what WSGI servers pass on.
        raw = self.path.split("?", 1)[0]
        paths = [raw, target.path, urllib.parse.unquote(raw), urllib.parse.unquote(target.path)]

        reading = {
            "parser": "python",
            "method": self.command,
            "methods": unique(methods),
            "query_accounts": unique(accounts(query)),
            "header_accounts": unique(self.headers.get_all("X-Account-Id", [])),
            "cookie_accounts": unique(cookie_accounts(self.headers.get_all("Cookie", []))),
            "body_accounts": unique(accounts(form)),
            "paths": unique(paths),
            "header": header,
        }
        # ASCII with escapes: a lone surrogate from a JSON body stays valid.
        data = json.dumps(reading).encode("ascii")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def main():
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Echo)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
