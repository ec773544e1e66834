"""paths: the lexical rule for manifest paths, writes that never leave the root through a
symlink, and reads that follow the links a root's owner made."""

from __future__ import annotations

import pytest

from interactive_eyes.data import paths


@pytest.mark.parametrize("value, problem", [
    ("audio_left/a.wav", None),
    ("a.wav", None),
    ("./a.wav", None),
    ("a/./b.wav", None),
    ("..a.wav", None),  # a name starting with dots is a name, not a parent
    ("a..b/c.wav", None),
    ("", "must be a non-empty string (a path relative to the data root)"),
    (None, "must be a non-empty string (a path relative to the data root)"),
    (7, "must be a non-empty string (a path relative to the data root)"),
    ("/etc/passwd", "is absolute (must be relative to the data root)"),
    ("//server/x", "is absolute (must be relative to the data root)"),
    ("C:/x.wav", "is absolute (must be relative to the data root)"),
    ("c:x.wav", "is absolute (must be relative to the data root)"),
    ("..", "contains '..' (must stay inside the data root)"),
    ("../x.wav", "contains '..' (must stay inside the data root)"),
    ("a/../../x.wav", "contains '..' (must stay inside the data root)"),
    ("a/b/..", "contains '..' (must stay inside the data root)"),
    ("a\\..\\x.wav", "contains a backslash (use '/' between folder names)"),
    ("a\x00.wav", "contains a control character"),
    ("a\n.wav", "contains a control character"),
    ("a\x85.wav", "contains a control character"),
    (".", "names the data root itself, not a file"),
    ("./.", "names the data root itself, not a file"),
])
def test_relpath_rule(value, problem):
    assert paths.relpath_problem(value) == problem


def test_confined_is_lexical(tmp_path):
    assert paths.confined(tmp_path, "a/b.wav") == tmp_path / "a/b.wav"
    with pytest.raises(paths.PathEscapeError) as err:
        paths.confined(tmp_path, "../b.wav", "video")
    assert str(err.value) == f"{tmp_path}: video '../b.wav' contains '..' (must stay inside the data root)"


@pytest.fixture
def roots(tmp_path):
    """A data root with a link into it (fine) and links out of it: a folder, a file, a dangling one."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    (outside / "x.mp4").write_bytes(b"outside")
    (root / "inner").symlink_to(root / "real")
    (root / "out_dir").symlink_to(outside)
    (root / "out_file.mp4").symlink_to(outside / "x.mp4")
    (root / "dangling.mp4").symlink_to(outside / "not_yet.mp4")
    return root, outside


def test_write_targets_inside_the_root(roots):
    root, _ = roots
    assert paths.write_target(root, "new/clip.mp4") == root / "new/clip.mp4"  # need not exist
    assert paths.write_target(root, "inner/clip.mp4") == root / "inner/clip.mp4"  # a link that stays inside
    linked_root = root.parent / "root_link"
    linked_root.symlink_to(root)  # the root itself may be a link
    assert paths.write_target(linked_root, "real/a.mp4") == linked_root / "real/a.mp4"


@pytest.mark.parametrize("rel, real", [
    ("out_dir/clip.mp4", "outside/clip.mp4"),
    ("out_dir/sub/clip.align.json", "outside/sub/clip.align.json"),
    ("out_file.mp4", "outside/x.mp4"),
    ("dangling.mp4", "outside/not_yet.mp4"),
])
def test_write_through_a_link_out_of_the_root_is_refused(roots, rel, real):
    root, outside = roots
    with pytest.raises(paths.PathEscapeError) as err:
        paths.write_target(root, rel, "video")
    real_path = outside.parent.resolve() / real
    assert str(err.value) == (f"{root / rel}: video resolves to {real_path}, outside the data root "
                              f"{root.resolve()} (a symlink)")


def test_write_target_refuses_the_root_itself(roots):
    root, _ = roots
    (root / "self").symlink_to(root)
    with pytest.raises(paths.PathEscapeError, match="resolves to .*, outside the data root"):
        paths.write_target(root, "self", "video")
    with pytest.raises(paths.PathEscapeError, match="names the data root itself"):
        paths.write_target(root, ".", "video")


def test_reads_follow_the_owners_links(roots):
    """A root of links into a read-only copy is a normal set-up (the tests' own roots are)."""
    root, outside = roots
    (outside / "a_left.flac").write_bytes(b"fLaC")
    assert paths.find_audio(root, "out_dir/a_left.wav") == root / "out_dir/a_left.flac"
    with pytest.raises(paths.PathEscapeError, match="audio track '../x.wav' contains '..'"):
        paths.find_audio(root, "../x.wav")
    with pytest.raises(FileNotFoundError, match=r"real/none.wav: audio track not found \(also looked for none.flac\)"):
        paths.find_audio(root, "real/none.wav")


def test_candidates_keep_the_manifest_path_first(tmp_path):
    assert paths.audio_candidates(tmp_path, "a/b.flac") == [tmp_path / "a/b.flac", tmp_path / "a/b.wav"]
    assert paths.audio_candidates(tmp_path, "a/b.WAV") == [tmp_path / "a/b.WAV", tmp_path / "a/b.flac"]


def test_data_root_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("IE_BENCH_DATA", raising=False)
    monkeypatch.delenv("IE_BENCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert paths.data_root(None, "bench") == tmp_path / "ie-bench" / "data" / "bench"
    monkeypatch.setenv("IE_BENCH_DATA", str(tmp_path / "d"))
    assert paths.data_root(None) == tmp_path / "d"
    assert paths.data_root(tmp_path / "given") == tmp_path / "given"
    assert paths.cache_home() == tmp_path / "ie-bench"
