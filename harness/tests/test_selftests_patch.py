"""The selftests patch: subject renumbering."""

from __future__ import annotations

from harness import selftests_patch as sp


def test_renumber_subjects() -> None:
    text = "From abc Mon Sep 17 00:00:00 2001\nSubject: [PATCH 03/10] x86: Wire up cpu_opv\n"
    assert sp._renumber(text, 11).splitlines()[1] == \
        "Subject: [PATCH 03/11] x86: Wire up cpu_opv"


def test_cover_letter_renumbered() -> None:
    assert "[PATCH 00/11]" in sp._renumber("Subject: [PATCH 00/10] cpu_opv\n", 11)

