"""The body limit stops reading a chunked upload at the limit, driven at the ASGI level.

TestClient reads the whole request body before calling the app, so it cannot show how much
of the body the service pulled; here ``receive`` counts the chunks the app asked for.
"""

from __future__ import annotations

import asyncio
import json

from fastapi.testclient import TestClient

CHUNK = 64 * 1024
HEAD = (
    b"--x\r\n"
    b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n'
    b"Content-Type: audio/wav\r\n\r\n"
)
TAIL = b"\r\n--x--\r\n"


def _post_chunked(app, n_chunks: int) -> tuple[int, dict, int]:
    """POST a file of ``n_chunks`` x 64 KiB to /predict in chunks, without Content-Length.

    Returns the status, the JSON body and how many file chunks the app pulled.
    """
    messages = [HEAD] + [b"\0" * CHUNK] * n_chunks + [TAIL]
    pulled = -1  # the multipart head is not a file chunk
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        if pulled + 1 >= len(messages):
            return {"type": "http.disconnect"}
        pulled += 1
        more = pulled + 1 < len(messages)
        return {"type": "http.request", "body": messages[pulled], "more_body": more}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


def test_chunked_body_over_the_limit_is_refused_without_reading_the_rest(
    client: TestClient,
) -> None:
    limit_chunks = 1024 * 1024 // CHUNK  # the fixture's 1 MB limit
    status, body, pulled = _post_chunked(client.app, n_chunks=8 * limit_chunks)
    assert status == 413
    assert body["error"] == "upload_too_large"
    # It stops at the chunk that crosses the limit (the head counts too): 7 MB are never read.
    assert pulled == limit_chunks


def test_chunked_body_under_the_limit_is_read_whole(client: TestClient) -> None:
    # Same path, a body under the limit: all of it is read (file chunks and the closing
    # boundary) and judged as audio: zeros are no audio format, a 4xx other than 413.
    status, body, pulled = _post_chunked(client.app, n_chunks=4)
    assert pulled == 5
    assert status != 413 and 400 <= status < 500, body
    assert body["error"] != "upload_too_large"
