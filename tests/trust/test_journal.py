"""The alert journal on disk: order, durability across reopen, torn tails, the applied marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.journal import LOG, MARKER, Journal, JournalError
from domain.alerts import AlertKey, Signal
from domain.severity import Severity


def sig(i: int, firing: bool = True) -> Signal:
    key = AlertKey("r", f"S-{i}", "d", "m")
    if firing:
        return Signal.fire(key, family="fam", kind="threshold", at_ms=1_000 + i, severity=Severity.RED,
                           value=float(i), threshold=5.0, message=f"message {i} ☃")
    return Signal.clear(key, family="fam", kind="threshold", at_ms=1_000 + i, value=float(i),
                        message=f"message {i} ☃")


def seqs(j: Journal) -> list[int]:
    return [e.seq for e in j.entries()]


def test_entries_come_back_in_order_after_reopen(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append([("*", [sig(1), sig(2, firing=False)]), ("p7", [sig(3)])])
    j.append([("*", [sig(4)])])
    j.close()
    again = Journal(tmp_path)
    entries = list(again.entries())
    assert [e.seq for e in entries] == [1, 2, 3]
    assert [e.partition for e in entries] == ["*", "p7", "*"]
    assert entries[0].signals == (sig(1), sig(2, firing=False))  # every field survives the round trip
    assert len(again) == 3
    assert again.uncertain_seq == 1  # a crashed replay may have committed the first one


def test_applied_entries_are_not_replayed_and_the_log_empties(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append([("*", [sig(i)]) for i in range(3)])
    first, _second, _ = list(j.entries())
    j.mark_applied(first)
    assert seqs(j) == [2, 3] and len(j) == 2
    j.close()
    j = Journal(tmp_path)
    assert seqs(j) == [2, 3] and j.uncertain_seq == 2
    for e in list(j.entries()):
        j.mark_applied(e)
    assert len(j) == 0 and (tmp_path / LOG).stat().st_size == 0 and seqs(j) == []
    j.append([("*", [sig(9)])])  # numbering goes on after the truncation, also after a reopen
    j.close()
    assert seqs(Journal(tmp_path)) == [4]


@pytest.mark.parametrize("tail", [b"0000abcd {\"seq\": 9", b"deadbeef {}\n", b"\x00\x00\x00"],
                         ids=["torn line", "bad checksum", "zeros"])
def test_a_damaged_tail_is_cut_off(tmp_path: Path, tail: bytes) -> None:
    j = Journal(tmp_path)
    j.append([("*", [sig(1)])])
    j.close()
    size = (tmp_path / LOG).stat().st_size
    with open(tmp_path / LOG, "ab") as fh:
        fh.write(tail)
    j = Journal(tmp_path)
    assert seqs(j) == [1] and (tmp_path / LOG).stat().st_size == size
    j.append([("*", [sig(2)])])
    assert seqs(j) == [1, 2]


def test_a_damaged_marker_is_an_error_naming_the_file(tmp_path: Path) -> None:
    Journal(tmp_path).close()
    (tmp_path / MARKER).write_text("garbage")
    with pytest.raises(JournalError, match=str(tmp_path / MARKER)):
        Journal(tmp_path)


def test_one_process_per_journal(tmp_path: Path) -> None:
    first = Journal(tmp_path)
    with pytest.raises(JournalError, match="in use by another process"):
        Journal(tmp_path)
    first.close()
    Journal(tmp_path).close()  # free again once closed (or once its process died)


def test_new_files_and_folders_are_made_durable_in_their_parent(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # An fsync of journal.log keeps its content, not its name: the folder must be fsynced as well,
    # or a power cut right after the first acknowledged append could take the whole file.
    import alerting.journal as journal_module
    synced: list[Path] = []
    real = journal_module._fsync_dir

    def fsync_dir(d: Path) -> None:
        synced.append(Path(d))
        real(d)

    monkeypatch.setattr(journal_module, "_fsync_dir", fsync_dir)
    where = tmp_path / "data" / "journal" / "d"
    Journal(where).close()
    assert synced[:3] == [tmp_path, tmp_path / "data", tmp_path / "data" / "journal"]  # each new folder
    assert synced[3:] == [where]  # journal.log (and the lock file) created in it
    synced.clear()
    Journal(where).close()  # nothing new: nothing to sync
    assert synced == []
