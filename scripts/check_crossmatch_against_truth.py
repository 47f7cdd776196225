#!/usr/bin/env python
"""Compare data/03_primary/crossmatch.parquet with the mock survey's ground truth.

Prints the recovery (fraction of the true DESI x APOGEE pairs that survive ingestion and the
APOGEE quality cuts and were matched; goal >= 99 %) and the number of false matches (goal 0).
Exit status 1 when a goal is missed.

    python scripts/check_crossmatch_against_truth.py [--root .] [--min-recovery 0.99] [--max-false 0]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

from desi_abundances.crossmatch.apogee import compare_with_truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="project root")
    parser.add_argument("--truth", default="data/01_raw/mock_truth.parquet")
    parser.add_argument("--crossmatch", default="data/03_primary/crossmatch.parquet")
    parser.add_argument("--metadata", default="data/02_intermediate/spectra_metadata.parquet")
    parser.add_argument("--apogee", default="data/02_intermediate/apogee_stars.parquet")
    parser.add_argument("--params", default="conf/base/parameters_crossmatch.yml")
    parser.add_argument("--min-recovery", type=float, default=0.99)
    parser.add_argument("--max-false", type=int, default=0)
    args = parser.parse_args(argv)

    def read(name: str) -> pd.DataFrame:
        path = args.root / name
        if not path.exists():
            sys.exit(f"{path} does not exist: run the mock survey, data_ingestion and crossmatch first")
        return pd.read_parquet(path)

    cuts = yaml.safe_load((args.root / args.params).read_text())["crossmatch"]["apogee_cuts"]
    result = compare_with_truth(
        read(args.crossmatch), read(args.truth), read(args.metadata), read(args.apogee), cuts
    )
    print(json.dumps(result, indent=2))
    print(
        f"recovered {result['recovered']} of {result['expected']} true pairs passing the cuts "
        f"({100 * result['recovery']:.2f} %, goal >= {100 * args.min_recovery:.0f} %); "
        f"false matches: {result['false_matches']} (goal <= {args.max_false})"
    )
    ok = result["recovery"] >= args.min_recovery and result["false_matches"] <= args.max_false
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
