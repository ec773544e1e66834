"""syncnet_python's full pipeline, as published Sync-C numbers were made: the one-frame video lag
and the full-frame re-encodes (the ``sync`` metric's ``pipeline="reference"`` option).

What the reference does before it scores (``run_pipeline.py``, spec/metrics.md §1.2):

1. ``ffmpeg -y -i VIDEO -qscale:v 2 -async 1 -r 25 pyavi/video.avi`` — an MPEG-4 Part 2 AVI at
   25 fps, fixed quantiser 2;
2. ``ffmpeg -y -i video.avi -qscale:v 2 -threads 1 -f image2 pyframes/%06d.jpg`` — one JPEG per
   25 fps frame, quantiser 2, read back with ``cv2.imread`` (BGR);
3. audio: ``ffmpeg -i video.avi -ac 1 -vn -acodec pcm_s16le -ar 16000 audio.wav``.

Measured on two 25 fps talking-head videos (issue 16): the AVI's video timestamps are 0, 2, 3, …
(its first frame is followed by a one-frame gap), so step 2 writes **376 JPEGs from 375 frames**:
JPEG 0 and JPEG 1 both show source frame 0, and **every JPEG k ≥ 1 equals source frame k − 1**.
The audio is not delayed, so the picture lags the sound by one frame (40 ms): published Sync-C
values are those of a video delayed by one frame, and a perfectly synchronised video scores its
best offset at ±1 there, not 0.

``lagged_slots`` reproduces the lag on ie-bench's 25 fps grid (``syncnet.GridState``): every slot a
source frame fills moves one slot later, and the first frame also fills slot 0. It is applied to
every source frame rate: the lag was measured at 25 fps; ie-bench assumes the same one-slot gap
for other rates (not measured).

``Reencoder`` reproduces steps 1–2 on each 25 fps frame with PyAV's libavcodec (no ffmpeg binary):
``mpeg4`` encoder, yuv420p, quantiser fixed at 2 (``qmin = qmax = 2`` with the QSCALE flag: the
``-qscale:v 2`` of the command line), default GOP (12) and no B-frames, decoded by the ``mpeg4``
decoder; then ``mjpeg`` at quantiser 2 in yuvj420p (the full-range format ffmpeg picks for
JPEG), and the JPEG bytes are decoded with ``cv2.imdecode`` — the reference's ``cv2.imread``.
Differences that remain: the engine hands over RGB frames, so the source's yuv420p is rebuilt from
RGB before step 1 (a rounding and chroma re-subsampling the reference does not have); a source
frame that fills several 25 fps slots (frame rates below 25) is encoded once, not once per slot;
the reference's *second* chain (crops written as an XVID video by OpenCV, then extracted to JPEG
again by ``SyncNetInstance.evaluate``) is not reproduced.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

PIPELINES = ("exact", "reference", "lag")  # lag: the one-frame delay without the re-encodes
QSCALE = 2  # the reference's -qscale:v 2 for both the AVI and the JPEGs
FPS = 25


def lagged_slots(slots: list[int], first: bool) -> list[int]:
    """The 25 fps slots a source frame fills in the reference's JPEG sequence.

    ``slots``: the slots the frame fills on the exact grid; ``first``: it is the first frame that
    fills any. JPEG k >= 1 is frame k - 1, and JPEG 0 repeats frame 0 (the AVI's 0, 2, 3, …
    timestamps), so 375 frames give 376 slots.
    """
    out = [s + 1 for s in slots]
    if first and out:
        out.insert(0, out[0] - 1)
    return out


class Reencoder:
    """Steps 1–2 of the reference on a stream of frames: MPEG-4 AVI at q2, then JPEG at q2,
    returned as ``cv2.imread`` returns a JPEG (BGR uint8). One instance per clip."""

    def __init__(self, width: int, height: int):
        import av

        if width % 2 or height % 2:
            raise ValueError(f"reference pipeline: frame size {width}x{height} is odd; the reference's "
                             f"yuv420p MPEG-4 re-encode needs even sizes")
        self.width, self.height = int(width), int(height)
        self._enc = self._encoder(av, "mpeg4", "yuv420p")
        self._dec = av.CodecContext.create("mpeg4", "r")
        self._dec.thread_count = 1  # frame threads would delay the output by a frame each
        self._dec.open()
        self._jpeg = self._encoder(av, "mjpeg", "yuvj420p")
        self._pts = 0

    def _encoder(self, av, codec: str, pix_fmt: str):
        ctx = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, pix_fmt
        ctx.time_base = Fraction(1, FPS)
        ctx.framerate = Fraction(FPS)
        ctx.thread_count = 1
        ctx.options = {"flags": "+qscale", "qmin": str(QSCALE), "qmax": str(QSCALE)}
        ctx.open()
        return ctx

    def bgr(self, rgb: np.ndarray) -> np.ndarray:
        """One frame through the AVI and the JPEG, as BGR."""
        import av
        import cv2

        rgb = np.ascontiguousarray(rgb)
        if rgb.shape != (self.height, self.width, 3):
            raise ValueError(f"reference pipeline: frame is {rgb.shape[1]}x{rgb.shape[0]}, "
                             f"earlier frames {self.width}x{self.height}")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = self._pts
        decoded = [d for p in self._enc.encode(frame) for d in self._dec.decode(p)]
        if len(decoded) != 1:  # no B-frames and one thread: each frame comes straight back
            raise RuntimeError(f"reference pipeline: MPEG-4 round trip returned {len(decoded)} frames for one")
        yuvj = decoded[0].reformat(format="yuvj420p")
        yuvj.pts = self._pts
        packets = self._jpeg.encode(yuvj)
        self._pts += 1
        if len(packets) != 1:
            raise RuntimeError(f"reference pipeline: JPEG encoder returned {len(packets)} packets for one frame")
        img = cv2.imdecode(np.frombuffer(bytes(packets[0]), np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise RuntimeError("reference pipeline: OpenCV could not decode the JPEG it was given")
        return img


class FramePipeline:
    """What one clip's network sees of each decoded frame under ``pipeline`` (one of PIPELINES):
    the 25 fps slots it fills (lagged for "reference"/"lag") and its BGR pixels (re-encoded for
    "reference")."""

    def __init__(self, pipeline: str):
        self.pipeline = pipeline
        self.lag_started = False  # the first frame has filled slot 0 too
        self.reencoder: Reencoder | None = None

    def slots(self, slots: list[int]) -> list[int]:
        if self.pipeline != "exact" and slots:
            slots = lagged_slots(slots, first=not self.lag_started)  # the reference's JPEG k = frame k-1
            self.lag_started = True
        return slots

    def pixels(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(BGR for the network, RGB for a face detector) of one decoded RGB frame."""
        if self.pipeline == "reference":
            if self.reencoder is None:
                self.reencoder = Reencoder(rgb.shape[1], rgb.shape[0])
            bgr = self.reencoder.bgr(rgb)  # what cv2.imread reads from the reference's JPEG
            return bgr, bgr[..., ::-1]
        return np.ascontiguousarray(rgb[..., ::-1]), rgb  # the network sees BGR (cv2.imread order)
