"""Compare two output folders of watersupply: every CSV and every GeoPackage layer.

Usage::

    python benchmarks/compare_outputs.py REF_DIR NEW_DIR

Files are paired by their path relative to each folder. CSV files and the
layers of GeoPackages (attribute columns, and geometries as WKB) are compared
cell by cell, in row order. Text and numbers must be equal; floats may differ by
a relative 1e-9 (``--rtol``), which absorbs the last digit of the 10
significant digits the CSVs are written with, and nothing more. NaN equals
NaN. Other files (reports, maps) are only checked for presence.

Prints one line per compared file (``same`` or what differs, with the first
differing cells) and exits 1 if anything differs or is missing, else 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

RTOL = 1e-9
SHOW = 3  # differing cells shown per column


def _frames_differ(ref: pd.DataFrame, new: pd.DataFrame, *, rtol: float) -> list[str]:
    """What differs between two tables (empty list: equal within `rtol`)."""
    out: list[str] = []
    if list(ref.columns) != list(new.columns):
        only_ref = [c for c in ref.columns if c not in new.columns]
        only_new = [c for c in new.columns if c not in ref.columns]
        out.append(f"columns differ: only in ref {only_ref}, only in new {only_new}"
                   + ("" if only_ref or only_new else " (order)"))
    if len(ref) != len(new):
        out.append(f"rows: {len(ref)} in ref, {len(new)} in new")
        return out
    label = ref.iloc[:, 0].astype(str).to_numpy() if len(ref.columns) else np.arange(len(ref)).astype(str)
    for col in [c for c in ref.columns if c in new.columns]:
        a, b = ref[col], new[col]
        num_a = pd.to_numeric(a, errors="coerce")
        num_b = pd.to_numeric(b, errors="coerce")
        numeric = (num_a.notna() | a.isna()).all() and (num_b.notna() | b.isna()).all()
        if numeric and (a.dtype.kind in "fiub" or b.dtype.kind in "fiub"):
            x, y = num_a.to_numpy(dtype=float), num_b.to_numpy(dtype=float)
            both_nan = np.isnan(x) & np.isnan(y)
            with np.errstate(invalid="ignore"):
                close = (x == y) | (np.abs(x - y) <= rtol * np.maximum(np.abs(x), np.abs(y)))
            bad = ~(close | both_nan)
            if bad.any():
                with np.errstate(invalid="ignore", divide="ignore"):
                    rel = np.abs(x - y) / np.maximum(np.abs(x), np.abs(y))
                worst = np.nanmax(np.where(bad, rel, np.nan)) if np.isfinite(rel[bad]).any() else float("nan")
                cells = ", ".join(f"{label[i]}: {x[i]!r} -> {y[i]!r}" for i in np.flatnonzero(bad)[:SHOW])
                out.append(f"{col}: {int(bad.sum())} value(s) differ (max relative {worst:.3g}); {cells}")
        else:
            sa = [None if m else str(v) for v, m in zip(a.tolist(), a.isna().tolist())]  # missing == missing
            sb = [None if m else str(v) for v, m in zip(b.tolist(), b.isna().tolist())]
            bad = np.array([u != v for u, v in zip(sa, sb)], dtype=bool)
            if bad.any():
                cells = ", ".join(f"{label[i]}: {sa[i]!r} -> {sb[i]!r}" for i in np.flatnonzero(bad)[:SHOW])
                out.append(f"{col}: {int(bad.sum())} value(s) differ; {cells}")
    return out


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True, low_memory=False)


def _gpkg_tables(path: Path) -> dict[str, pd.DataFrame]:
    import pyogrio

    tables: dict[str, pd.DataFrame] = {}
    for name, _geom in pyogrio.list_layers(path):
        df = pyogrio.read_dataframe(path, layer=str(name))
        if "geometry" in df.columns and hasattr(df, "geometry"):
            wkb = df.geometry.to_wkb(hex=True)
            df = pd.DataFrame(df.drop(columns=[df.geometry.name]))
            df["geometry_wkb"] = wkb.to_numpy()
        tables[str(name)] = pd.DataFrame(df)
    return tables


def compare_folders(ref: Path, new: Path, *, rtol: float = RTOL) -> tuple[list[str], int]:
    """Lines of a report, and the number of files that differ or are missing."""
    lines: list[str] = []
    bad = 0
    ref_files = {p.relative_to(ref).as_posix() for p in ref.rglob("*") if p.is_file()}
    new_files = {p.relative_to(new).as_posix() for p in new.rglob("*") if p.is_file()}
    ignored = (".log",)
    for rel in sorted(ref_files | new_files):
        if rel.endswith(ignored):
            continue
        if rel not in new_files or rel not in ref_files:
            lines.append(f"MISSING {rel}: only in {'ref' if rel in ref_files else 'new'}")
            bad += 1
            continue
        suffix = Path(rel).suffix.lower()
        if suffix == ".csv":
            diffs = _frames_differ(_read_csv(ref / rel), _read_csv(new / rel), rtol=rtol)
            lines.append(f"{'DIFF' if diffs else 'same'} {rel}" + "".join(f"\n    {d}" for d in diffs))
            bad += bool(diffs)
        elif suffix == ".gpkg":
            a, b = _gpkg_tables(ref / rel), _gpkg_tables(new / rel)
            diffs = []
            if list(a) != list(b):
                diffs.append(f"layers differ: ref {list(a)}, new {list(b)}")
            for layer in [k for k in a if k in b]:
                diffs += [f"layer {layer!r}: {d}" for d in _frames_differ(a[layer], b[layer], rtol=rtol)]
            lines.append(f"{'DIFF' if diffs else 'same'} {rel} ({len(a)} layers)" + "".join(f"\n    {d}" for d in diffs))
            bad += bool(diffs)
    return lines, bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref", type=Path, help="reference output folder")
    ap.add_argument("new", type=Path, help="output folder to check")
    ap.add_argument("--rtol", type=float, default=RTOL, help=f"relative tolerance for floats (default {RTOL:g})")
    args = ap.parse_args(argv)
    for p in (args.ref, args.new):
        if not p.is_dir():
            print(f"error: {p} is not a folder", file=sys.stderr)
            return 2
    lines, bad = compare_folders(args.ref, args.new, rtol=args.rtol)
    print("\n".join(lines))
    compared = sum(1 for line in lines if line.startswith(("same", "DIFF", "MISSING")))
    print(f"{compared} file(s) compared (CSV and GeoPackage, rtol {args.rtol:g}); "
          f"{bad} differ or are missing" if bad else f"{compared} file(s) compared: identical (rtol {args.rtol:g})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
