#!/usr/bin/env python3
"""A fake streaming LLM for `bench/run voice`: Ollama's `POST /api/chat` with
`"stream": true`, answered as NDJSON — one `{"model", "created_at", "message":
{"role": "assistant", "content": <token>}, "done": false}` line per token with a
delay before each, then a `"done": true` line with Ollama's timing fields — the
wire format of a real Ollama, so oipd's provider code is what is measured.
Also `GET /api/tags` (Ollama's model list). Stdlib only.

    fake_llm.py --port 3996 [--token-ms 30] [--first-ms 150]

The answer is a few spoken sentences (~70 tokens) about the question's first
words, so every turn has several sentence chunks to synthesize.
"""
import argparse, json, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = ("Here is a short answer about {q}. The first sentence is spoken while the rest is still being written. "
          "Then a second sentence adds some detail, with a number or two, like twenty five minutes and two servings. "
          "A third sentence keeps the listener company for a moment longer, as a real assistant would. "
          "And that is all there is to say about it.")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes, as a stream may

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/api/tags":
            body = json.dumps({"models": [{"name": "bench:latest", "model": "bench:latest"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            self.send_error(400)
            return
        if self.path != "/api/chat":
            self.send_error(404)
            return
        msgs = req.get("messages") or [{}]
        q = " ".join(str(msgs[-1].get("content", "")).split()[:4]) or "that"
        model = req.get("model", "bench")
        tokens = [w for w in ANSWER.format(q=q).split(" ")]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        t0 = time.time()
        try:
            for i, tok in enumerate(tokens):
                time.sleep((ARGS.first_ms if i == 0 else ARGS.token_ms) / 1000)
                line = {"model": model, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "message": {"role": "assistant", "content": tok + ("" if i == len(tokens) - 1 else " ")}, "done": False}
                self.wfile.write((json.dumps(line) + "\n").encode())
                self.wfile.flush()
            took = int((time.time() - t0) * 1e9)
            end = {"model": model, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "message": {"role": "assistant", "content": ""},
                   "done": True, "done_reason": "stop", "total_duration": took, "eval_count": len(tokens), "eval_duration": took}
            self.wfile.write((json.dumps(end) + "\n").encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # oipd cancelled the generation (barge-in, client gone): as Ollama, stop


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=3996)
    ap.add_argument("--token-ms", type=float, default=30, help="delay before each token after the first")
    ap.add_argument("--first-ms", type=float, default=150, help="delay before the first token")
    ARGS = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    print(json.dumps({"url": f"http://127.0.0.1:{ARGS.port}"}), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
