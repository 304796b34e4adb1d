"""TAU Urban Acoustic Scenes 2022 Mobile dataset layout: ``meta.csv`` plus split CSVs.

Layout (as in the official development set, Zenodo 6337421)::

    <root>/meta.csv                   tab-separated: filename scene_label identifier source_label
    <root>/audio/<scene>-<city>-<loc>-<seg>-<idx>-<device>.wav
    <root>/split_setup/split5.csv ... split100.csv, test.csv   tab-separated: filename scene_label [...]

The label set is read from ``meta.csv`` and never hard-coded, so any data set laid out this way
(e.g. the ESC-10 pack in ``../shared/data``) works.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from asc_edge.errors import ConfigError, DataError

META_COLUMNS = ("filename", "scene_label", "identifier", "source_label")
SPLIT_COLUMNS = ("filename", "scene_label")
SPLIT_SIZES = (5, 10, 25, 50, 100)
_MAX_LISTED = 5  # how many offending rows an error message lists
_MAX_QUOTED = 80  # characters of CSV text an error message quotes back (longer text ends in "…")


def _cap(text: str, limit: int = _MAX_QUOTED) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" when it was longer."""
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True)
class Clip:
    """One audio clip of the data set.

    path: absolute path of the WAV file.
    filename: the path as written in the CSV, relative to the data set root (e.g. ``audio/x-a.wav``).
    label: scene label (``scene_label``).
    identifier: recording id (TAU: ``<city>-<location>``); clips sharing it come from one recording.
    device: recording device (``source_label``; TAU: a, b, c, s1..s6).
    """

    path: Path
    filename: str
    label: str
    identifier: str
    device: str


@dataclass
class TauDataset:
    """A data set opened from ``root/meta.csv``.

    labels: sorted unique ``scene_label`` values of meta.csv; a label's class index is its position.
    clips: every meta.csv row, keyed by ``filename``, in file order.
    """

    root: Path
    labels: tuple[str, ...]
    clips: dict[str, Clip]

    def label_index(self, label: str) -> int:
        """Class index of ``label`` (its position in the sorted ``labels``).

        Raises DataError if the label is not in meta.csv.
        """
        try:
            return self.labels.index(label)
        except ValueError:
            raise DataError(
                f"unknown label {_cap(str(label))!r}: {self.root / 'meta.csv'} has labels "
                f"{_cap(', '.join(self.labels), 4 * _MAX_QUOTED)}",
                hint="use one of the labels listed in meta.csv's scene_label column",
            ) from None

    def __len__(self) -> int:
        return len(self.clips)


def _read_tsv(path: Path, required: tuple[str, ...], what: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Read a tab-separated file with a header; return (header, [(line number, row dict)]).

    TAU CSVs are not quoted: quoting is off (``csv.QUOTE_NONE``), so a quote character is part of
    its field, and one field never spans lines. Line numbers count from 1 (the header).

    Raises DataError naming ``path`` (and the line) for a file that is unreadable or not UTF-8, an
    empty file, a header without the ``required`` columns, a line the csv module rejects (e.g. a
    field over its 128 KiB limit), or a line with fewer fields than the header. Text quoted back
    from the file is cut to 80 characters.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: {what} is not UTF-8 text ({exc})",
                        hint=f"save {path.name} as UTF-8 tab-separated text") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror or exc})",
                        hint=f"check that {path} is a readable file") from None
    lines = text.splitlines()
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise _line_error(path, 1, exc) from None
    if not header or not any(h.strip() for h in header):
        raise DataError(f"{path}: {what} is empty (no header line)",
                        hint=f"the first line must be the tab-separated header: {' '.join(required)}")
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        sep_hint = ""
        if len(header) == 1 and ("," in header[0] or ";" in header[0] or " " in header[0]):
            sep_hint = "; the file looks comma/space-separated but must be tab-separated"
        raise DataError(
            f"{path}: {what} header {_cap(chr(9).join(header))!r} lacks column(s) {', '.join(missing)}{sep_hint}",
            hint=f"the first line must be the tab-separated header: {chr(9).join(required)!r} "
                 f"(TAU layout; more columns are allowed)",
        )
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for fields in reader:
            lineno = reader.line_num  # one record per line: fields never span lines without quoting
            if not fields or all(not f.strip() for f in fields):
                continue  # blank line
            if len(fields) < len(header):
                raise DataError(
                    f"{path}: line {lineno} has {len(fields)} tab-separated field(s), the header has "
                    f"{len(header)}: {_cap(chr(9).join(fields))!r}",
                    hint="fix or delete that line; fields must be separated by tabs",
                )
            rows.append((lineno, {h: fields[i].strip() for i, h in enumerate(header)}))
    except csv.Error as exc:
        raise _line_error(path, reader.line_num, exc) from None
    return header, rows


def _line_error(path: Path, lineno: int, exc: csv.Error) -> DataError:
    return DataError(f"{path}: line {lineno} is not a tab-separated row ({_cap(str(exc))})",
                     hint="fix or delete that line; TAU CSVs hold one clip per line, fields separated by tabs")


def open_dataset(root: str | Path) -> TauDataset:
    """Open a TAU-layout data set by reading ``root/meta.csv``.

    meta.csv is tab-separated with header ``filename scene_label identifier source_label``
    (more columns are allowed and ignored). Audio files are not touched here; ``load_split``
    checks that the clips it returns exist.

    Raises DataError: root missing or not a folder, meta.csv missing/unreadable, wrong header,
    a short or incomplete row, a duplicate filename, or no rows at all.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: data set folder does not exist",
                        hint="pass the folder that holds meta.csv and audio/ (e.g. ../shared/data)")
    if not root.is_dir():
        raise DataError(f"{root}: data set root is not a folder",
                        hint="pass the folder that holds meta.csv, not a file inside it")
    root = root.resolve()
    meta = root / "meta.csv"
    if not meta.is_file():
        raise DataError(f"{meta}: meta.csv not found in the data set root",
                        hint="point at the TAU-layout root that holds meta.csv "
                             "(tab-separated: filename scene_label identifier source_label)")
    _, rows = _read_tsv(meta, META_COLUMNS, "meta.csv")
    if not rows:
        raise DataError(f"{meta}: meta.csv has a header but no clips",
                        hint="add one line per clip: filename<TAB>scene_label<TAB>identifier<TAB>source_label")
    clips: dict[str, Clip] = {}
    for lineno, row in rows:
        filename = row["filename"]
        empty = [c for c in META_COLUMNS if not row[c]]
        if empty:
            raise DataError(f"{meta}: line {lineno} ({_cap(filename) or '<no filename>'}) has empty {', '.join(empty)}",
                            hint="fill in every column of that line or delete it")
        if filename in clips:
            raise DataError(f"{meta}: line {lineno} repeats filename {_cap(filename)}",
                            hint="each clip must appear once in meta.csv; delete the duplicate line")
        clips[filename] = Clip(path=root / filename, filename=filename, label=row["scene_label"],
                               identifier=row["identifier"], device=row["source_label"])
    labels = tuple(sorted({c.label for c in clips.values()}))
    return TauDataset(root=root, labels=labels, clips=clips)


def _split_file_name(split: str) -> str:
    s = str(split).strip()
    low = s.lower()
    if low.endswith(".csv"):
        low = low[:-4]
    if low == "test":
        return "test.csv"
    m = re.fullmatch(r"(?:split)?(\d+)", low)
    if m and int(m.group(1)) in SPLIT_SIZES:
        return f"split{int(m.group(1))}.csv"
    raise ConfigError(
        f"unknown split {split!r}",
        hint=f"use one of {', '.join(str(n) for n in SPLIT_SIZES)} (or split5 ... split100), test or all",
    )


def find_split_file(root: Path, split: str, splits_dir: Path | None = None) -> Path:
    """Find the CSV of a split.

    split: "5", "10", "25", "50", "100" (or "split5" ... "split100", optionally with ".csv") or "test";
    maps to ``split<N>.csv`` / ``test.csv``.
    Looks only in ``splits_dir`` when it is given, else in ``root/`` and then ``root/split_setup/``.

    Raises ConfigError for an unknown split name, DataError (listing where it looked) when no file exists.
    """
    name = _split_file_name(split)
    root = Path(root)
    dirs = [Path(splits_dir).expanduser()] if splits_dir is not None else [root, root / "split_setup"]
    for d in dirs:
        cand = d / name
        if cand.is_file():
            return cand.resolve()
    looked = ", ".join(str(d / name) for d in dirs)
    raise DataError(
        f"split {split!r}: {name} not found (looked in: {looked})",
        hint=f"put {name} (tab-separated: filename scene_label) in {dirs[-1]}"
             + ("" if splits_dir is not None else " or pass the folder that holds it as splits_dir"),
    )


def _listing(items: list[str]) -> str:
    shown = "; ".join(items[:_MAX_LISTED])
    more = f"; ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return shown + more


def load_split(ds: TauDataset, split: str, splits_dir: Path | None = None) -> list[Clip]:
    """Clips of one split, in CSV order.

    The split CSV is tab-separated with header ``filename scene_label`` (more columns allowed);
    filenames are relative to the data set root, as in meta.csv.

    Raises DataError when: the file is missing (see ``find_split_file``); a row's filename is not in
    meta.csv (names the CSV, line number and filename); a row's label is not one of ``ds.labels``
    ("unknown label") or disagrees with meta.csv; a filename is listed twice; a row points at a
    WAV that does not exist ("CSV row points at missing file", with the count and the first few);
    or the split has no rows. ConfigError for an unknown split name. ``split="all"``: every clip of
    meta.csv in its order (for collections without split CSVs, e.g. ``tau_samples``).
    """
    if str(split).strip().lower() == "all":
        return list(ds.clips.values())
    path = find_split_file(ds.root, split, splits_dir)
    _, rows = _read_tsv(path, SPLIT_COLUMNS, "split CSV")
    if not rows:
        raise DataError(f"{path}: split {split!r} is empty (header but no rows)",
                        hint="list the split's clips, one 'filename<TAB>scene_label' line each, or choose another split")
    not_in_meta: list[str] = []
    unknown: list[str] = []
    mismatch: list[str] = []
    dupes: list[str] = []
    seen: set[str] = set()
    clips: list[Clip] = []
    for lineno, row in rows:
        fn, label = row["filename"], row["scene_label"]
        if label not in ds.labels:
            unknown.append(f"line {lineno}: {_cap(fn)} has label {_cap(label)!r}")
            continue
        clip = ds.clips.get(fn)
        if clip is None:
            not_in_meta.append(f"line {lineno}: {_cap(fn)}")
            continue
        if clip.label != label:
            mismatch.append(f"line {lineno}: {_cap(fn)} is {_cap(label)!r} here but {_cap(clip.label)!r} in meta.csv")
            continue
        if fn in seen:
            dupes.append(f"line {lineno}: {_cap(fn)}")
            continue
        seen.add(fn)
        clips.append(clip)
    meta = ds.root / "meta.csv"
    if unknown:
        raise DataError(
            f"{path}: {len(unknown)} row(s) with an unknown label "
            f"(labels in {meta}: {_cap(', '.join(ds.labels), 4 * _MAX_QUOTED)}): "
            f"{_listing(unknown)}",
            hint="fix the scene_label of those rows or use the meta.csv that belongs to this split",
        )
    if not_in_meta:
        raise DataError(
            f"{path}: {len(not_in_meta)} row(s) not in {meta}: {_listing(not_in_meta)}",
            hint="the split must list files of this data set; check the data set root / splits_dir pairing "
                 "or add the clips to meta.csv",
        )
    if mismatch:
        raise DataError(f"{path}: {len(mismatch)} row(s) disagree with meta.csv: {_listing(mismatch)}",
                        hint="make the split's scene_label match meta.csv")
    if dupes:
        raise DataError(f"{path}: {len(dupes)} duplicate row(s): {_listing(dupes)}",
                        hint="list each clip once in the split CSV")
    missing = [c for c in clips if not c.path.is_file()]
    if missing:
        raise DataError(
            f"{path}: CSV row points at missing file ({len(missing)} of {len(clips)} missing): "
            f"{_listing([str(c.path) for c in missing])}",
            hint=f"restore the audio under {ds.root} (re-download / re-extract) or drop those rows from the CSV",
        )
    return clips
