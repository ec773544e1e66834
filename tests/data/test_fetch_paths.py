"""data fetch writes only inside its data root: ground-truth videos (``root / clip.video``), their
``.align.json``, reference frames and released files are refused, one line each, when a symlink
would carry the write out of the root; the other clips and files go on."""

from __future__ import annotations

import hashlib
import io

import pytest

from interactive_eyes.data import fetch, manifest
from interactive_eyes.data.paths import PathEscapeError

BODIES = {"audio_left/a_left.wav": b"left track bytes", "audio_right/a_right.wav": b"right track bytes"}


def bench(videos=("a.mp4", "b.mp4")):
    clips = []
    for cid, video in zip(("a", "b"), videos):
        clips.append({
            "id": cid, "duration": 2.0, "video": video, "reference": {"youtube_id": f"yt_{cid}", "time": 1.0},
            "people": [{"role": r, "audio": f"audio_{r}/{cid}_{r}.wav", "speaking": [],
                        "audio_sha256": hashlib.sha256(BODIES.get(f"audio_{r}/{cid}_{r}.wav", b"")).hexdigest()}
                       for r in ("left", "right")],
        })
    return manifest.parse({"schema": manifest.SCHEMA, "schema_version": 1, "name": "t", "version": "1",
                           "source": {"repository": "o/r", "commit": "c" * 40, "folder": "f"}, "clips": clips})


@pytest.fixture
def root(tmp_path):
    r, outside = tmp_path / "root", tmp_path / "outside"
    r.mkdir()
    outside.mkdir()
    return r


def outside_files(root):
    return sorted(p.name for p in (root.parent / "outside").rglob("*"))


class Resolver:
    """Records what is asked; every source is offline (the clip's item fails with this reason)."""

    def __init__(self):
        self.asked = []

    def __call__(self, yt):
        self.asked.append(yt)
        raise fetch.FetchError(f"https://www.youtube.com/watch?v={yt}: offline in this test")


def test_video_in_a_linked_folder_is_refused_and_the_next_clip_goes_on(root):
    (root / "vids").symlink_to(root.parent / "outside")
    resolver = Resolver()
    items = fetch.fetch_youtube(root, bench(videos=("vids/a.mp4", "b.mp4")), frames=False, videos=True,
                                resolver=resolver)
    assert [(i.what, i.status) for i in items] == [("a video", "failed"), ("b video", "failed")]
    real = (root.parent / "outside").resolve()
    # the record is checked first: it is written next to the video
    assert items[0].reason == (f"{root}/vids/a.align.json: alignment record resolves to {real}/a.align.json, "
                               f"outside the data root {root.resolve()} (a symlink)")
    assert items[1].reason == "https://www.youtube.com/watch?v=yt_b: offline in this test"
    assert resolver.asked == ["yt_b"] and outside_files(root) == []


def test_alignment_record_linked_out_is_refused(root):
    (root / "v").mkdir()
    (root / "v" / "a.align.json").symlink_to(root.parent / "outside" / "record.json")
    resolver = Resolver()
    (item, other) = fetch.fetch_youtube(root, bench(videos=("v/a.mp4", "b.mp4")), frames=False, videos=True,
                                        resolver=resolver)
    assert item.status == "failed" and "v/a.align.json: alignment record resolves to" in item.reason
    assert other.status == "failed" and resolver.asked == ["yt_b"]


def test_frames_folder_linked_out_is_refused(root):
    (root / "frames").symlink_to(root.parent / "outside")
    resolver = Resolver()
    items = fetch.fetch_youtube(root, bench(), frames=True, videos=False, resolver=resolver)
    assert [(i.what, i.status) for i in items] == [("a frame", "failed"), ("b frame", "failed")]
    assert all("reference frame resolves to" in i.reason and "outside the data root" in i.reason for i in items)
    assert resolver.asked == [] and outside_files(root) == []


def test_extract_ground_truth_checks_before_any_work(root):
    (root / "vids").symlink_to(root.parent / "outside")
    clip = bench(videos=("vids/a.mp4", "b.mp4")).clips[0]
    missing = fetch.SourceStreams(video=str(root / "nope.mp4"), audio=str(root / "nope.mp4"))
    with pytest.raises(PathEscapeError, match="outside the data root"):  # not FetchError: nothing was read
        fetch.extract_ground_truth(missing, clip, root, 1.0)
    assert fetch.alignment_path(root, bench().clips[0]) == root / "a.align.json"


class Transport:
    def __init__(self, files):
        self.files, self.asked = files, []

    def open(self, url, start=0):
        self.asked.append(url)
        body = self.files[url]
        return io.BytesIO(body[start:]), len(body)


def test_released_file_through_a_linked_folder_is_refused(root):
    b = bench()
    (root / "audio_left").symlink_to(root.parent / "outside")
    urls = {fetch.release_url(b, rel): body for rel, body in BODIES.items()}
    transport = Transport(urls)
    report = fetch.fetch_release(root, b, clips=["a"], transport=transport, progress=False, retries=0, backoff=0)
    by = {i.what: i for i in report.items}
    assert by["audio_left/a_left.wav"].status == "failed"
    assert by["audio_left/a_left.wav"].reason == (
        f"{root}/audio_left/a_left.wav: audio resolves to {(root.parent / 'outside').resolve()}/a_left.wav, "
        f"outside the data root {root.resolve()} (a symlink)")
    assert by["audio_right/a_right.wav"].status == "downloaded"
    assert (root / "audio_right/a_right.wav").read_bytes() == BODIES["audio_right/a_right.wav"]
    assert transport.asked == [fetch.release_url(b, "audio_right/a_right.wav")]
    assert outside_files(root) == []


def test_a_linked_part_file_is_refused(root):
    """The download appends to <target>.part: a link there would write outside the root."""
    b = bench()
    (root / "audio_left").mkdir()
    (root / "audio_left" / "a_left.wav.part").symlink_to(root.parent / "outside" / "victim")
    transport = Transport({fetch.release_url(b, rel): body for rel, body in BODIES.items()})
    report = fetch.fetch_release(root, b, clips=["a"], transport=transport, progress=False, retries=0, backoff=0)
    item = next(i for i in report.items if i.what == "audio_left/a_left.wav")
    assert item.status == "failed" and "a_left.wav.part: audio resolves to" in item.reason
    assert outside_files(root) == []
