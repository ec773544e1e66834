"""per_clip.jsonl and results.json writes: short writes completed, a full disk is one line (exit 3)
and leaves nothing torn."""

from __future__ import annotations

import errno
import json
import os

import pytest
from app_helpers import write_clip, write_manifest
from click.testing import CliRunner

from interactive_eyes.app import store
from interactive_eyes.app.cli import main
from interactive_eyes.app.errors import DiskFull


class FlakyDisk:
    """``os.write`` that writes at most ``chunk`` bytes per call to files named ``target`` and raises
    ENOSPC once ``capacity`` bytes have gone to them; other files are written normally."""

    def __init__(self, target: str, chunk: int, capacity: int | None = None):
        self.target, self.chunk, self.capacity, self.written, self.calls = target, chunk, capacity, 0, 0
        self.real = os.write

    def __call__(self, fd, data):
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = ""
        if not os.path.basename(name).startswith(self.target) and self.target not in name:
            return self.real(fd, data)
        self.calls += 1
        n = min(self.chunk, len(data))
        if self.capacity is not None:
            n = min(n, self.capacity - self.written)
            if n <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += n
        return self.real(fd, bytes(data[:n]))


def test_short_writes_are_completed(tmp_path, monkeypatch):
    disk = FlakyDisk("per_clip.jsonl", chunk=7)
    monkeypatch.setattr(os, "write", disk)
    s = store.ResultStore(tmp_path / "per_clip.jsonl")
    recs = [{"clip": f"c{i}", "value": i / 3, "cache_key": f"k{i}"} for i in range(3)]
    for r in recs:
        s.append(r)
    lines = (tmp_path / "per_clip.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and [json.loads(x) for x in lines[:-1]] == recs
    assert disk.calls == sum(-(-len(store.dumps(r, sort_keys=True).encode() + b"\n") // 7) for r in recs)


def test_disk_full_mid_record_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    p = tmp_path / "per_clip.jsonl"
    s = store.ResultStore(p)
    s.append({"clip": "c0", "cache_key": "k0"})
    before = p.read_bytes()
    monkeypatch.setattr(os, "write", FlakyDisk("per_clip.jsonl", chunk=5, capacity=12))
    with pytest.raises(DiskFull) as exc:
        s.append({"clip": "c1", "cache_key": "k1", "value": 1.5})
    assert str(exc.value) == (f"{p}: cannot write (No space left on device); free some space and run again, "
                              "the results so far are kept")
    assert p.read_bytes() == before  # the 12 bytes that did get written were cut off again


def test_disk_full_for_results_json_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "results.json"
    store.write_json_atomic(p, {"old": True})
    monkeypatch.setattr(os, "write", FlakyDisk(".results.json.", chunk=100, capacity=3))
    with pytest.raises(DiskFull, match="results.json: cannot write"):
        store.write_json_atomic(p, {"new": "x" * 1000})
    assert json.loads(p.read_text()) == {"old": True}
    assert sorted(x.name for x in tmp_path.iterdir()) == ["results.json"]  # no temporary file left


def test_score_on_a_full_disk_is_exit_3_with_complete_lines(tmp_path, fake_metrics, monkeypatch):
    gen = tmp_path / "gen"
    gen.mkdir()
    for i in range(4):
        write_clip(gen / f"c{i}.mp4", value=30 * (i + 1))
    manifest = write_manifest(tmp_path / "m.json", 4)
    ref = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), "--out", str(tmp_path / "ref"),
                                    "--metrics", "mean_luma"])
    assert ref.exit_code == 0, ref.output
    ref_lines = (tmp_path / "ref" / "per_clip.jsonl").read_text().splitlines()
    room = len(ref_lines[0]) + 1 + len(ref_lines[1]) + 1 + 40  # two records fit, the third is torn at 40 bytes
    monkeypatch.setattr(os, "write", FlakyDisk("per_clip.jsonl", chunk=64, capacity=room))
    out = tmp_path / "full"
    r = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), "--out", str(out),
                                  "--metrics", "mean_luma"])
    assert r.exit_code == 3, r.output
    error = r.output[r.output.index("Error: "):].strip()  # after the progress bar (stderr)
    assert error == (f"Error: {out / 'per_clip.jsonl'}: cannot write (No space left on device); "
                     "free some space and run again, the results so far are kept")
    got = (out / "per_clip.jsonl").read_text().splitlines()

    def strip(line):
        rec = json.loads(line)
        rec.pop("seconds")
        return rec

    assert [strip(x) for x in got] == [strip(x) for x in ref_lines[:2]]
    assert not (out / "results.json").exists()
    monkeypatch.undo()  # space again: the run resumes and ends where the reference did
    fake_metrics_again = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), "--out", str(out),
                                                   "--metrics", "mean_luma"])
    assert fake_metrics_again.exit_code == 0, fake_metrics_again.output
    assert [strip(x) for x in (out / "per_clip.jsonl").read_text().splitlines()] == [strip(x) for x in ref_lines]
