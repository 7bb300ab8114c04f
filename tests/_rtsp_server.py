"""Serve a video over RTSP with GStreamer's RTSP server. Runs under the SYSTEM python3 (it has ``gi``).

    /usr/bin/python3 tests/_rtsp_server.py SOURCE.avi OUT.mp4 PORT

Encodes the MJPEG ``SOURCE.avi`` to an H.264 ``OUT.mp4`` with ``x264enc`` (unless OUT exists), then serves
it at ``rtsp://127.0.0.1:PORT/cam`` and prints ``READY``. Each client gets the video from its start, in
real time; the stream ends with the file. Needs the Debian packages gir1.2-gst-rtsp-server-1.0,
python3-gi and gstreamer1.0-plugins-{base,good,bad,ugly}.
"""

from __future__ import annotations

import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def encode(source: str, target: str) -> None:
    tmp = target + ".part"
    pipeline = Gst.parse_launch(
        f'filesrc location="{source}" ! avidemux ! jpegdec ! videoconvert ! video/x-raw,format=I420 ! '
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! h264parse ! "
        f'mp4mux ! filesink location="{tmp}"'
    )
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    msg = bus.timed_pop_filtered(Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if msg is None or msg.type == Gst.MessageType.ERROR:
        raise SystemExit(f"encoding failed: {msg.parse_error() if msg else 'no message'}")
    os.replace(tmp, target)


def main() -> None:
    source, target, port = sys.argv[1], sys.argv[2], sys.argv[3]
    Gst.init(None)
    if not os.path.exists(target):
        encode(source, target)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{target}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )'
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on port {port}")
    print("READY", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
