"""Map every speech clip of queen.1c to its speaker and subtitle text; write ``transcripts.tsv``.

Follows ScummVM engines/queen (talk.cpp, cutaway.cpp, logic.cpp ``makeJoeSpeak``, sound.cpp ``playSound``):

* dialogues (``*.DOG``): Joe's lines are ``"%2d%4xJ" % (talkKey, id)`` + segment, the other person's ``...P``;
  special lines ``%2dSSSSJ``, ``%2dXXXXP``, ``%2dXXXXJ``. The person is the character the DOG file is named after.
* cutaways (``*.CUT``): basename padded with ``_`` to 5 characters + ``%02d`` object index + segment. The speaker is
  Joe for object 0, else the actor(s) that the room and bob number select in QUEEN.JAS (``A|B`` when several);
  objects -2/-3 are voiced text with speaker ``TEXT``.
* Joe's remarks: ``JOE%04d`` + segment; 1-40 are Joe's responses, 41 and up object descriptions (QUEEN2.JAS).

Sentences are split at ``*XX`` command codes; each segment is one clip (segment number in hex). Only names that
exist as ``.SB`` entries are written. Output: one line per clip, ``file<TAB>speaker<TAB>source<TAB>text``, sorted
by file name.

    python scripts/queen/transcripts.py [--queen QUEEN_1C] [--out DIR]
"""

from __future__ import annotations

import argparse
import re
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

from qreader import DEFAULT, QueenResource

DOG_HEADER_SIZE = 20
ACTOR_TABLE_OFFSET = 70174  # in QUEEN.JAS after its 20-byte header; located by scanning (see the README)

DOG_MAP = {
    "AND": "ANDERSON",
    "JIM": "JIMMY",
    "TAM": "TAMMY",
    "PRIN": "PRINCESS",
    "SEC": "SECRETARY",
    "WEDGE": "WEDGEWOOD",
    "TALLPYG": "PYGMY",
    "JOHN": "JOHAN",
    "AZURA": "PRINCESS",
    "ANDSON": "ANDERSON",
}

Line = tuple[str, str, str]  # (voice file prefix, speaker, sentence)


def i16(b: bytes, o: int) -> int:
    """Big-endian signed 16-bit integer at offset ``o``."""
    return struct.unpack_from(">h", b, o)[0]


def u16(b: bytes, o: int) -> int:
    """Big-endian unsigned 16-bit integer at offset ``o``."""
    return struct.unpack_from(">H", b, o)[0]


def get_string(b: bytes, off: int, align: int = 2) -> tuple[str, int]:
    """Talk::getString: read a Pascal string at ``off``; return it and the next offset (aligned to ``align``)."""
    n = b[off]
    off += 1
    if n == 0:
        return "", off
    s = b[off : off + n].decode("latin-1")
    off = (off + n + (align - 1)) & ~(align - 1)
    return s, off


def segments(sentence: str) -> list[tuple[int, str, str]]:
    """Talk::speak: split on ``*`` + 2-character command; return [(segment number (1-based), text, command)]."""
    out = []
    seg_idx = 0
    start = 0
    i = 0
    while i < len(sentence):
        if sentence[i] == "*":
            text = sentence[start:i]
            i += 1
            cmd = sentence[i : i + 2]
            if cmd == "XY":
                i += 11
            i += 2
            if cmd not in ("GD", "GM"):  # SPEAK_NONE: no speakSegment
                out.append((seg_idx + 1, text, cmd))
            seg_idx += 1
            start = i
        else:
            i += 1
    if start != i:
        out.append((seg_idx + 1, sentence[start:i], ""))
    return out


def norm_speaker(a: str) -> str:
    """Normalise an actor or DOG name to a character label (``X2_ZOMBIE3`` -> ``ZOMBIE``, ``AND`` -> ``ANDERSON``)."""
    a = re.sub(r"^X\d+_", "", a.upper())
    a = re.sub(r"-[HEF]$", "", a)
    a = re.sub(r"_(STAND|SHOWER)$", "", a)
    a = re.sub(r"\d+$", "", a)
    return DOG_MAP.get(a, a)


def voice_name(prefix: str, seg: int) -> str:
    """Voice file name (without ``.SB``) for a prefix and segment; sound.cpp replaces spaces in the first 8 chars."""
    n = f"{prefix}{seg:x}"
    return (n[:8].replace(" ", "0") + n[8:]).upper()


class Jas:
    """The parts of QUEEN.JAS / QUEEN2.JAS needed here: object records, names, descriptions, actors."""

    def __init__(self, r: QueenResource) -> None:
        j = r.read("QUEEN.JAS")[20:]
        self.num_rooms, self.num_names, self.num_objects, self.num_desc = struct.unpack_from(">4H", j, 0)
        p = 8
        self.obj: list[tuple[int, ...] | None] = [None]
        for _ in range(self.num_objects):
            self.obj.append(struct.unpack_from(">hHHHhHHh", j, p))
            p += 16
        lines = r.read("QUEEN2.JAS").decode("latin-1").splitlines()
        self.lines = lines
        self.desc = lines[: self.num_desc]
        self.names = lines[self.num_desc : self.num_desc + self.num_names]
        o = self.num_desc + self.num_names + self.num_rooms + 12
        self.joe_resp = lines[o : o + 40]
        n_actors, actor_anim, actor_names, _actor_files = struct.unpack_from(">4H", j, ACTOR_TABLE_OFFSET)
        o = self.num_desc + self.num_names + self.num_rooms + 12 + 40
        anames = lines[o + actor_anim : o + actor_anim + actor_names]
        self.actors = []  # (room, bob number, actor name)
        for k in range(n_actors):
            rc = struct.unpack_from(">12h", j, ACTOR_TABLE_OFFSET + 8 + 24 * k)
            self.actors.append((rc[0], rc[1], anames[rc[2] - 1]))

    def actor_for_object(self, objnum: int) -> str | None:
        """Character label(s) for a person object: actors with its room and bob number, joined by ``|``."""
        room = self.obj[objnum][5]
        bob = sum(1 for i in range(1, objnum + 1) if self.obj[i][5] == room and self.obj[i][7] in (-3, -4))
        names = sorted({norm_speaker(a[2]) for a in self.actors if a[0] == room and a[1] == bob})
        return "|".join(names) if names else None

    def obj_name(self, objnum: int) -> str | None:
        """The object's name from QUEEN2.JAS, or None."""
        if objnum <= 0 or objnum > self.num_objects:
            return None
        nm = abs(self.obj[objnum][0])
        return self.names[nm - 1] if 1 <= nm <= len(self.names) else None

    def obj_image(self, objnum: int) -> int:
        """The object's image field (-3/-4 mark a person)."""
        return self.obj[objnum][7]


def _dog_list(b: bytes, off: int, count: int) -> Iterator[tuple[int, str]]:
    """Entries {pad, id i16, Pascal string aligned to 4} of a DOG talk list."""
    for _ in range(count):
        off += 2
        ident = i16(b, off)
        off += 2
        s, off = get_string(b, off, 4)
        yield ident, s


def dog_lines(r: QueenResource, name: str) -> tuple[int, list[Line]]:
    """All voiced lines of dialogue file ``name``: (talkKey, [(prefix, speaker, sentence)])."""
    b = r.read(name)[DOG_HEADER_SIZE:]
    level_max, _unique_key, talk_key, j_max, p_max = struct.unpack_from(">5h", b, 0)
    level_max = abs(level_max)
    person1_off, _cutaway_off, person2_off = struct.unpack_from(">3H", b, 22)
    joe_off = 32 + level_max * 96
    spk = norm_speaker(name[:-4]) if not name.startswith("MAN") else name[:-4]
    res = []
    for ident, s in _dog_list(b, joe_off, j_max):
        if s:
            pre = f"{talk_key:2d}{ident:4x}J" if ident != 0 else f"{talk_key:2d}SSSSJ"
            res.append((pre, "JOE", s))
    for ident, s in _dog_list(b, person1_off, p_max):
        if s:
            res.append((f"{talk_key:2d}{ident:4x}P", spk, s))
    off = person2_off
    s1, off = get_string(b, off)
    s2, off = get_string(b, off)
    if s1:
        res.append((f"{talk_key:2d}XXXXP", spk, s1))
    if s2:
        res.append((f"{talk_key:2d}XXXXJ", "JOE", s2))
    # initialTalk: Joe's string at joe_off + 4 if hasNotString == 0
    if u16(b, joe_off + 2) == 0:
        s, _ = get_string(b, joe_off + 4)
        if s:
            res.append((f"{talk_key:2d}SSSSJ", "JOE", s))
    return talk_key, res


def cut_lines(r: QueenResource, jas: Jas, name: str) -> tuple[bool, list[Line]]:
    """All voiced lines of cutaway file ``name``: (parsed without problems, [(prefix, speaker, sentence)])."""
    b = r.read(name)[20:]
    base = name[:-4]
    _com_panel, cnt, _flags1, _gs_ptr, next_sent, _bank_off = struct.unpack_from(">Hhhhhh", b, 0)
    cnt = abs(cnt)
    # sentence table: an entry string, then one string per object record
    off = next_sent & 0xFFFF
    _entry, off = get_string(b, off)
    sents = []
    for _ in range(cnt):
        s, off = get_string(b, off)
        sents.append(s)
    # object records
    p = 12
    res = []
    ok = True
    for i in range(cnt):
        try:
            o = struct.unpack_from(">17h", b, p)
        except struct.error:
            ok = False
            break
        p += 34
        objnum, anim_list, execute, from_object = o[0], o[4], o[5], o[12]
        pc = i16(b, p)
        p += 2 + 2 * max(pc, 0)
        if objnum == -1:  # OBJECT_ROOMFADE -> Joe
            objnum = 0
        typ = "ANIM"
        if objnum > 0 and not anim_list and jas.obj_image(objnum) in (-3, -4):
            typ = "PERSON"
        elif objnum == 0 and not anim_list:
            typ = "PERSON"
        if from_object > 0:
            typ = "NOANIM"
        if objnum in (-2, -3, -4):
            typ = {-2: "TSPEAK", -3: "TDISPSPEAK", -4: "TDISP"}[objnum]
        if typ == "ANIM" and not execute:
            typ = "NOANIM"
        if typ == "ANIM":  # skip the animation blocks (terminated by -2)
            while True:
                h = i16(b, p)
                p += 2
                if h == -2:
                    break
                if h > 1000 or p > len(b):
                    ok = False
                    break
                p += 18
            if not ok:
                break
        pre = (base + "_" * max(0, 5 - len(base)))[:5] + f"{i + 1:02d}"
        s = sents[i]
        if typ == "PERSON" and s and s != "*" and not s.startswith("#"):
            spk = "JOE" if objnum == 0 else (jas.actor_for_object(objnum) or "OBJ:" + str(jas.obj_name(objnum)))
            res.append((pre, spk, s))
        elif typ in ("TSPEAK", "TDISPSPEAK") and s:
            res.append((pre, "TEXT", s))
    return ok, res


def build_table(r: QueenResource) -> dict[str, tuple[str, str, str]]:
    """Voice name -> (speaker, text, source) for every candidate line; the first definition of a name wins."""
    jas = Jas(r)
    table: dict[str, tuple[str, str, str]] = {}

    def add(lines: list[Line], source: str) -> None:
        for pre, spk, s in lines:
            for seg, text, _cmd in segments(s):
                table.setdefault(voice_name(pre, seg), (spk, text.strip(), source))

    for n in sorted(r.entries):
        if n.endswith(".DOG"):
            _talk_key, lines = dog_lines(r, n)
            add(lines, n)
        elif n.endswith(".CUT"):
            ok, lines = cut_lines(r, jas, n)
            if not ok:
                print("parse problem", n, file=sys.stderr)
            add(lines, n)
    # Joe's responses and object descriptions
    add([(f"JOE{i:04d}", "JOE", s) for i, s in enumerate(jas.joe_resp, 1)], "QUEEN2.JAS:resp")
    add([(f"JOE{i + 40:04d}", "JOE", s) for i, s in enumerate(jas.desc, 1)], "QUEEN2.JAS:desc")
    return table


def main() -> None:
    """Write OUT/transcripts.tsv."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--queen", default=DEFAULT, help=f"path to queen.1c (default {DEFAULT})")
    ap.add_argument("--out", default=".", help="output folder (default: current directory)")
    args = ap.parse_args()
    r = QueenResource(args.queen)
    sb = {n[:-3] for n in r.entries if n.endswith(".SB")}
    table = build_table(r)
    matched = {k: v for k, v in table.items() if k in sb and v[1]}
    print("candidate lines", len(table), "matched to SB", len(matched), "of", len(sb), file=sys.stderr)
    unmatched = sorted(sb - set(matched))
    print("unmatched SB", len(unmatched), unmatched[:60], file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "transcripts.tsv", "w", encoding="utf-8") as f:
        for k in sorted(matched):
            spk, text, src = matched[k]
            text = text.replace("\t", " ")
            f.write(f"{k}.SB\t{spk}\t{src}\t{text}\n")


if __name__ == "__main__":
    main()
