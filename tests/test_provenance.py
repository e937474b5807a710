"""Atomic writes and provenance: a reader sees the old file or the new one, never a part."""

import json
import os

import pytest

from mamlpriv.provenance import provenance, write_atomic, write_json, write_result


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_atomic_writes_text_bytes_and_callables(tmp_path):
    p = write_atomic(tmp_path / "a" / "b.txt", "héllo")  # parent folders are made
    assert p == tmp_path / "a" / "b.txt" and p.read_text() == "héllo"
    write_atomic(tmp_path / "c.bin", b"\x00\x01\xff")
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01\xff"
    seen = []

    def writer(path):
        seen.append(path)
        path.write_text("from a writer")

    write_atomic(tmp_path / "d.txt", writer)
    assert (tmp_path / "d.txt").read_text() == "from a writer"
    # the writer was given a temporary file beside the target, not the target itself
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".d.txt.") and seen[0].name.endswith(".tmp")
    assert str(os.getpid()) in seen[0].name
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "a") == []


def test_write_atomic_replaces_an_existing_file(tmp_path):
    write_atomic(tmp_path / "x.txt", "old")
    write_atomic(tmp_path / "x.txt", "new")
    assert (tmp_path / "x.txt").read_text() == "new" and leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failed_writer_leaves_the_old_file_and_no_temporary_file(tmp_path, error):
    target = tmp_path / "x.json"
    target.write_text("old content")
    before = target.stat().st_mtime_ns

    def half_then_fail(path):
        path.write_text("half a fi")
        assert path.exists()
        raise error("killed")

    with pytest.raises(error, match="killed"):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old content" and target.stat().st_mtime_ns == before
    assert leftovers(tmp_path) == []


def test_a_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        write_atomic(tmp_path / "new.txt", lambda p: (p.write_text("x"), int("not a number")))
    assert list(tmp_path.iterdir()) == []


def test_write_json_round_trips(tmp_path):
    obj = {"b": [1, 2.5, None, True], "a": {"nested": "é"}, "z": -0.0}
    write_json(tmp_path / "r.json", obj)
    back = json.loads((tmp_path / "r.json").read_text())
    assert back == obj and list(back) == ["b", "a", "z"]  # key order kept
    with pytest.raises(TypeError):
        write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists() and leftovers(tmp_path) == []


def test_provenance_has_the_commit_versions_machine_and_date():
    prov = provenance(script="s.py")
    assert len(prov["git_commit"]) == 40 or prov["git_commit"].startswith("unknown")
    assert isinstance(prov["library_modified_since_commit"], bool)
    assert prov["versions"]["torch"] and prov["versions"]["numpy"] and prov["versions"]["python"]
    assert "cores" in prov["machine"] and prov["date"] and prov["script"] == "s.py"


def test_write_result_records_provenance(tmp_path):
    write_result(tmp_path / "r" / "x.json", "scripts/x.py", {"a": 1}, rows=[{"auc": 0.5}])
    out = json.loads((tmp_path / "r" / "x.json").read_text())
    prov = out["provenance"]
    assert prov["script"] == "scripts/x.py" and prov["args"] == {"a": 1}
    assert (len(prov["git_commit"]) == 40 or prov["git_commit"].startswith("unknown")) and prov["date"]
    assert prov["versions"]["torch"] and isinstance(prov["library_modified_since_commit"], bool)
    assert out["rows"] == [{"auc": 0.5}] and leftovers(tmp_path / "r") == []
