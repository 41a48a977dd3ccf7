"""Strict reading and atomic writing of triple files."""

from __future__ import annotations

import gzip
import pickle
import re
from pathlib import Path

import pytest

from hale_tf.data import (
    DataFormatError,
    DatasetNotAvailableError,
    HaleDataError,
    read_triples,
    write_triples,
)
from hale_tf.data.raw import git_blob_sha1, line_error, parse_triples, sha256_file, split_fields, triple_text

LOCATION = re.compile(r"^.+:\d+: ")


def _write(path: Path, payload: bytes) -> Path:
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize("name", ["t.txt", "t.tsv", "t.txt.gz", "t.tsv.gz"])
def test_round_trip_keeps_strings_exactly(tmp_path: Path, name: str) -> None:
    triples = [("00260881", "_hypernym", "00001740"), ("Roger_Suárez", "playsFor", "x y z"), ("a", "r", "a")]
    path = tmp_path / name
    write_triples(path, triples)
    assert read_triples(path) == triples
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_crlf_bom_and_missing_final_newline(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.txt", "\ufeffa\tr\tb\r\nc\tr\td\r\ne\tr\tf".encode())
    assert read_triples(path) == [("a", "r", "b"), ("c", "r", "d"), ("e", "r", "f")]


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_bytes(gzip.compress(b"a\tr\tb\n"))
    assert read_triples(path) == [("a", "r", "b")]


@pytest.mark.parametrize(
    ("payload", "line", "fragment"),
    [
        (b"a\tr\tb\nc\tr\n", 2, "expected 3 tab-separated fields"),
        (b"a\tr\tb\tx\n", 1, "found 4"),
        (b"a r b\n", 1, "separated by tabs, not spaces"),
        (b"a\tr\tb\n\tr\tb\n", 2, "empty field (head)"),
        (b"a\t\tb\n", 1, "empty field (relation)"),
        (b"a\tr\t \n", 1, "empty field (tail)"),
        (b"a\tr\tb\n\nc\tr\td\n", 2, "blank line"),
        (b"a\tr\tb\n\n", 2, "blank line"),
        (b"a\tr\tb\nc\tr\t\xff\xfe\n", 2, "invalid UTF-8 at column 5"),
        (b"", 1, "empty file"),
    ],
)
@pytest.mark.parametrize("suffix", [".txt", ".txt.gz"])
def test_malformed_input_names_file_and_line(
    tmp_path: Path, payload: bytes, line: int, fragment: str, suffix: str
) -> None:
    path = _write(tmp_path / f"bad{suffix}", payload)
    with pytest.raises(DataFormatError) as info:
        read_triples(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message
    assert "\n" not in message
    assert info.value.line == line and info.value.path == str(path)
    assert isinstance(info.value, HaleDataError) and isinstance(info.value, ValueError)


def test_error_on_a_late_line_reports_that_line(tmp_path: Path) -> None:
    rows = b"".join(b"e%d\tr\te%d\n" % (i, i + 1) for i in range(5000))
    path = _write(tmp_path / "big.txt.gz", rows + b"oops\n" + rows)
    with pytest.raises(DataFormatError, match=r"big\.txt\.gz:5001: expected 3"):
        read_triples(path)


def test_empty_file_allowed_on_request(tmp_path: Path) -> None:
    assert read_triples(_write(tmp_path / "e.txt", b""), allow_empty=True) == []


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotAvailableError, match="nope.txt: file not found"):
        read_triples(tmp_path / "nope.txt")
    with pytest.raises(DatasetNotAvailableError, match="is a directory"):
        read_triples(tmp_path)


def test_corrupt_gzip_is_a_format_error(tmp_path: Path) -> None:
    good = gzip.compress(b"".join(b"e%d\tr\tx\n" % i for i in range(20000)))
    path = tmp_path / "cut.txt.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataFormatError, match="corrupt or truncated gzip") as info:
        read_triples(path)
    assert LOCATION.match(str(info.value))


def test_fast_and_slow_paths_agree() -> None:
    text = "".join(f"h{i}\tr{i % 3}\tt{i}\r\n" for i in range(100)).encode()
    parsed = parse_triples(text)
    assert parsed == [(f"h{i}", f"r{i % 3}", f"t{i}") for i in range(100)]
    # Identical names share one object (memory for YAGO-sized splits).
    assert parsed[0][1] is parsed[3][1]


@pytest.mark.parametrize(
    "bad",
    [("a", "r"), ("a", "", "b"), ("a", "r\tx", "b"), ("a", "r", "b\n"), ("a", 1, "b"), None],
)
def test_write_rejects_what_could_not_be_read_back(tmp_path: Path, bad) -> None:
    path = tmp_path / "out.txt"
    with pytest.raises(DataFormatError, match=r"out\.txt:2: "):
        write_triples(path, [("x", "r", "y"), bad])
    assert list(tmp_path.iterdir()) == []  # nothing written, no temp file left


def test_write_is_atomic_and_gzip_deterministic(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.txt.gz"
    write_triples(path, [("a", "r", "b")])
    first = path.read_bytes()
    write_triples(path, [("a", "r", "b")])
    assert path.read_bytes() == first  # mtime 0, no file name: same content, same bytes
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.txt.gz"]
    assert gzip.decompress(first) == b"a\tr\tb\n"


def test_checksums(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello\n")
    assert sha256_file(path) == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object`


def test_format_error_pickles() -> None:
    err = DataFormatError("x.txt", 3, "bad")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == "x.txt:3: bad" and again.line == 3


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("a\tr\tb", None),
        ("a b\tr x\tc d", None),  # fields may contain spaces
        ("", "blank line"),
        ("   ", "blank line"),
        ("a\tr", "found 2"),
        ("\tr\t ", "empty fields (head, tail)"),
        ("a\t\tb", "empty field (relation)"),
    ],
)
def test_line_grammar(line: str, reason: str | None) -> None:
    found = line_error(line)
    assert found == reason if reason is None else reason in found


def test_a_piece_of_a_file_reports_file_lines() -> None:
    # Transform validates line-aligned chunks: messages carry the file's line numbers, and a byte-order
    # mark is only an artefact at line 1 (elsewhere it is part of a name).
    assert triple_text(b"\xef\xbb\xbfa\tr\tb\r\nc\tr\td\r\n") == "a\tr\tb\nc\tr\td"
    assert triple_text(b"\xef\xbb\xbfa\tr\tb\n", first_line=7) == "\ufeffa\tr\tb"
    assert split_fields("a\tr\tb\nc\tr\td") == ["a", "r", "b", "c", "r", "d"]
    with pytest.raises(DataFormatError, match=r"^f\.txt:12: expected 3 tab-separated fields"):
        split_fields("a\tr\tb\na\tr\tb\tc", "f.txt", first_line=11)
    with pytest.raises(DataFormatError, match=r"^f\.txt:10: invalid UTF-8 at column 3"):
        triple_text(b"a\tr\tb\nx\t\xff\tc\n", "f.txt", first_line=9)
    # Every line needs exactly two tabs, even when the total number of tabs adds up.
    with pytest.raises(DataFormatError, match=r":1: expected 3 .* found 4"):
        split_fields("a\tr\tb\tx\nc\td")
