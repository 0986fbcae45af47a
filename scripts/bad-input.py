#!/usr/bin/env python3
"""A bad-input corpus over every route of docs/openapi.yaml, sent over raw
sockets (so nothing a client library would fix up or refuse gets fixed up):
invalid UTF-8 in the path, query, headers and body; deep and malformed JSON;
oversized bodies; header floods and oversized headers; broken request lines.

No answer may be a 5xx, and a request the server can parse must be
answered (a bare close is accepted only for what HTTP/1.1 cannot parse or
what is over a limit). Routes that ignore a part (a GET's body) may answer
2xx; the corpus is about the server surviving, not about each status.

    bad-input.py BASE_URL TOKEN docs/openapi.yaml
"""

import concurrent.futures
import socket
import sys
import urllib.parse

import yaml

TIMEOUT = 10


def send(host, port, raw):
    """Sends `raw`; returns the status code, or None if the server closed
    without answering."""
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: it refused the rest
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    if not data:
        return None
    line = data.split(b"\r\n", 1)[0].split(b" ")
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else None


def request(method, target, headers=(), body=b"", host_header=True):
    lines = [method + b" " + target + b" HTTP/1.1"]
    if host_header:
        lines.append(b"host: localhost")
    lines += list(headers)
    if body:
        lines.append(b"content-length: " + str(len(body)).encode())
    lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def cases(path, method, token):
    """(name, raw request, whether a bare close is acceptable)."""
    auth = b"authorization: Bearer " + token.encode()
    json_ct = b"content-type: application/json"
    p = path.encode()
    m = method.upper().encode()
    deep = 20000
    yield "invalid UTF-8 in the path", request(m, p + b"/%FF%FE%80"), False
    yield "raw non-ASCII bytes in the path", request(m, p + b"\xff\xfe"), True
    yield "invalid UTF-8 in the query", request(m, p + b"?maxAgeSeconds=%FF&useCase=%C0%AF", [auth]), False
    yield "invalid UTF-8 in a header", request(m, p, [auth, b"x-request-id: \xff\xfe\xfd"]), True
    yield "invalid UTF-8 in the bearer", request(m, p, [b"authorization: Bearer \xff\xfe"]), True
    yield "invalid UTF-8 in a JSON body", request(m, p, [auth, json_ct], b'{"id": "\xff\xfe"}'), False
    yield "invalid UTF-8 in a form body", request(
        m, p, [auth, b"content-type: application/x-www-form-urlencoded"],
        b"grant_type=%FF&subject_token=\xff"), False
    yield "deeply nested arrays", request(m, p, [auth, json_ct], b"[" * deep + b"]" * deep), False
    yield "deeply nested objects", request(m, p, [auth, json_ct], b'{"a":' * deep + b"1" + b"}" * deep), False
    yield "truncated JSON", request(m, p, [auth, json_ct], b'{"id": "x", "name": '), False
    yield "a JSON scalar", request(m, p, [auth, json_ct], b"12345678901234567890123456789"), False
    yield "duplicate keys", request(m, p, [auth, json_ct], b'{"id":"a","id":"b","useCases":[],"useCases":{}}'), False
    yield "a body over the limit", request(m, p, [auth, json_ct], b'{"id":"' + b"a" * (2 << 20) + b'"}'), True
    yield "the wrong content type", request(m, p, [auth, b"content-type: text/plain"], b"{}"), False
    yield "a header flood", request(m, p, [b"x-flood-%d: %s" % (i, b"v" * 64) for i in range(2000)]), True
    yield "one huge header", request(m, p, [b"x-huge: " + b"h" * (256 << 10)]), True
    yield "a huge cookie", request(m, p, [b"cookie: " + b"c=" + b"c" * (64 << 10)]), True
    yield "no host header", request(m, p, [auth], host_header=False), False
    yield "an unknown method", request(b"BREW", p, [auth]), False
    yield "a 100 KB path", request(m, p + b"/" + b"a" * (100 << 10)), True


def connection_cases():
    """Cases about the connection, not the route: sent once. Some make the
    server wait (for a body or the rest of a head) until its timeouts."""
    yield "a lying content-length", request(b"POST", b"/v1/token", [b"content-length: 99999999999999999999"]), True
    yield "a body shorter than its length", request(b"POST", b"/v1/token", [b"content-length: 100"]) + b"x", True
    yield "a 10 KB method", request(b"X" * 10240, b"/healthz"), True
    yield "a garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, True
    yield "an HTTP/0.9 request", b"GET /healthz\r\n", True
    yield "a bare newline flood", b"\r\n" * 50000, True


def main():
    base, token, spec_path = sys.argv[1:4]
    url = urllib.parse.urlsplit(base)
    host, port = url.hostname, url.port
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    routes = []
    for path, item in spec["paths"].items():
        concrete = path
        for name in [seg[1:-1] for seg in path.replace(":", "/").split("/") if seg.startswith("{")]:
            concrete = concrete.replace("{" + name + "}", "x-" + name)
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                routes.append((concrete, method))
    work = [(f"{method.upper()} {path}", case) for path, method in routes
            for case in cases(path, method, token)]
    work += [("connection", case) for case in connection_cases()]

    def check(item):
        where, (name, raw, close_ok) = item
        try:
            status = send(host, port, raw)
        except OSError as e:
            return f"{where}: {name}: {e}"
        if status is None and not close_ok:
            return f"{where}: {name}: closed without an answer"
        if status is not None and status >= 500:
            return f"{where}: {name}: answered {status}"
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        failures = [f for f in pool.map(check, work) if f]
    sent = len(work)
    print(f"bad-input corpus: {sent} requests over {len(routes)} operations, {len(failures)} failures")
    for failure in failures[:40]:
        print("  " + failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
