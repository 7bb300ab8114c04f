"""Upload parts collected as chunks and joined once (inference_service.api.uploads)."""

from __future__ import annotations

import asyncio

import httpx
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartParser

from inference_service.api.uploads import PartBuffer, install


def test_a_part_buffer_joins_its_chunks_once_and_reads_them_back():
    part = PartBuffer(max_size=1_000_000)
    for i in range(50):
        part.write(bytes([i]) * 1000)
    assert part.tell() == 50_000 and len(part._chunks) == 50  # nothing joined while it is written
    part.seek(0)
    assert part.tell() == 0 and len(part._chunks) == 50  # nor by the rewind after parsing (in the event loop)
    whole = part.read()
    assert len(whole) == 50_000 and whole[999:1001] == b"\x00\x01" and whole[-1] == 49 and not part._chunks
    part.seek(0)
    assert part.read() is whole  # the joined bytes back the buffer: a second whole read copies nothing
    part.seek(0, 2)
    part.write(b"end")
    part.seek(0)
    assert part.read() == whole + b"end"
    rewound = PartBuffer()
    rewound.write(b"abc")
    rewound.seek(0)
    rewound.write(b"X")  # a write after the rewind overwrites from the start, as in any file
    rewound.seek(0)
    assert rewound.read() == b"Xbc"


def test_a_part_over_its_spool_size_goes_to_disk_as_before():
    part = PartBuffer(max_size=5000)
    part.write(b"a" * 4000)
    part.write(b"b" * 4000)
    assert part._rolled and part.tell() == 8000
    part.seek(0)
    assert part.read() == b"a" * 4000 + b"b" * 4000
    part.close()


def test_starlettes_parser_keeps_file_parts_in_part_buffers():
    install()
    photo = bytes(range(256)) * 4000  # ~1 MB in 64 KiB chunks
    request = httpx.Request("POST", "http://x/", files={"photo": ("p.jpg", photo)}, data={"scene": "corridor"})
    body = request.read()
    headers = Headers(raw=[(k.lower().encode(), v.encode()) for k, v in request.headers.items()])

    async def parse() -> tuple[object, bytes, object]:
        async def stream():  # type: ignore[no-untyped-def]
            for i in range(0, len(body), 65536):
                yield body[i : i + 65536]

        form = await MultiPartParser(headers, stream(), max_part_size=len(body)).parse()
        upload = form["photo"]
        assert not isinstance(upload, str)
        return upload.file, await upload.read(), form["scene"]

    file, data, scene = asyncio.run(parse())
    assert isinstance(file, PartBuffer) and data == photo and scene == "corridor"
