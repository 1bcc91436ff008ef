#!/usr/bin/env python3
"""Check oipd's HTTP responses with REDbot, an independent HTTP linter.

    redbot-check.py [--allow NOTE_ID]... [-H 'Name: value']... BASE_URL PATH...

For each BASE_URL+PATH, REDbot (PyPI `redbot`; run with the Python it is installed in:
`pip install redbot==2.7.1 httplint==2026.10.4 thor==0.17.0`) sends a GET and its own probe
requests (Accept-Encoding: gzip always; If-None-Match, If-Modified-Since and a Range when the
response offers an ETag, Last-Modified and Accept-Ranges), then every note it makes is printed
as `level NOTE_ID: summary`. Linked assets are not checked (REDbot's "descend" is off); the
URLs are checked concurrently, and --timeout bounds the whole run.

REDbot's note levels are `good`, `info`, `warning` and `bad`. `bad` is the error level:
the exit status is 1 when any URL gets a `bad` note, when REDbot cannot fetch the URL
(no complete response), or when one of its probe requests fails (the *_SUBREQ_PROBLEM
notes, which REDbot itself only rates `info`). Otherwise it is 0; `warning` never fails.

--allow NOTE_ID accepts a `bad` note with that id (e.g. a false positive whose reason is
written down where the check is called). It is still printed, marked `(allowed)`.
-H adds a request header, e.g. `-H "Authorization: Bearer $TOKEN"` for private media.
"""

import argparse
import sys
from configparser import ConfigParser

try:
    import thor
    from redbot import __version__ as redbot_version
    from redbot.resource import HttpResource
except ImportError:
    sys.exit("redbot-check: the redbot package is missing: pip install redbot==2.7.1 httplint==2026.10.4 thor==0.17.0")

FAIL_LEVEL = "bad"


def check_all(urls, headers, timeout):
    """Run REDbot on the URLs (no descent), all in one event loop; returns the HttpResources.

    One loop run for all: stopping thor's loop drops its pooled connections, so a second
    run on the same client would wait on dead ones."""
    config = ConfigParser()
    config.read_dict({"redbot": {"enable_local_access": "True"}})  # as the redbot CLI does
    resources = []
    for url in urls:
        resource = HttpResource(config["redbot"], descend=False)
        resource.set_request(url, headers=headers)
        resources.append(resource)

    def one_done():
        if all(r.check_done for r in resources):
            thor.stop()

    for resource in resources:
        resource.on("check_done", one_done)
    thor.schedule(timeout, thor.stop)
    for resource in resources:
        resource.check()
    if not all(r.check_done for r in resources):
        thor.run()
    return resources


def flatten(notes):
    for note in notes:
        yield note
        yield from flatten(note.subnotes)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base_url")
    ap.add_argument("paths", nargs="+", metavar="PATH")
    ap.add_argument("--allow", action="append", default=[], metavar="NOTE_ID",
                    help="accept this 'bad' note (repeatable)")
    ap.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                    help="request header to send (repeatable)")
    ap.add_argument("--timeout", type=float, default=90, help="seconds for the whole run (default 90)")
    args = ap.parse_args()
    headers = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            ap.error(f"bad header {h!r}: expected 'Name: value'")
        headers.append((name.strip(), value.strip()))

    print(f"REDbot {redbot_version}; failing level: {FAIL_LEVEL}; allowed: {', '.join(args.allow) or '-'}")
    urls = [args.base_url.rstrip("/") + "/" + path.lstrip("/") for path in args.paths]
    failures = []
    for url, res in zip(urls, check_all(urls, headers, args.timeout)):
        status = res.response.status_code if res.has_response else "-"
        print(f"\n== {url}  [{status}]")
        if res.fetch_error is not None or not res.response.complete or not res.check_done:
            why = res.fetch_error.desc if res.fetch_error is not None else f"not finished within {args.timeout:g}s"
            print(f"  FETCH FAILED: {why}")
            failures.append(f"{url}: fetch failed")
        for note in flatten(res.response.notes):
            note_id, level = type(note).__name__, note.level.value
            mark = ""
            if level == FAIL_LEVEL:
                if note_id in args.allow:
                    mark = " (allowed)"
                else:
                    failures.append(f"{url}: {note_id}")
            elif note_id.endswith("_SUBREQ_PROBLEM"):
                mark = " (probe failed)"
                failures.append(f"{url}: {note_id}")
            print(f"  {level:7} {note_id}: {note.summary}{mark}")

    print()
    if failures:
        print(f"FAIL: {len(failures)} problem(s): " + "; ".join(failures))
        return 1
    print(f"OK: {len(args.paths)} URL(s), no '{FAIL_LEVEL}' notes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
