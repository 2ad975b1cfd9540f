"""Rows per second of the data check: the cheap start-up check and the full check (image decoding).

    make bench-data-check       # or: python benchmarks/bench_data_check.py [--rows 20000]

Two files, written fresh: a GSM8K-sized text file (math ground truths, the routed reward's gold
extraction runs on each) and a Geometry3K-style file (one 64x64 PNG per row). The start-up check is
the cheap one, on every row of data.train_files and val_files; target: a DAPO-Math-17k-sized file
(17k rows) in under a few seconds, so it costs nothing next to a trainer start.
"""

import argparse
import io
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from r4b_verl.data.check import check_file


def png(i: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (i % 256, (7 * i) % 256, 90)).save(out, format="PNG")
    return out.getvalue()


def rows(n: int, images: bool) -> list[dict]:
    golds = ["72", "\\frac{3}{4}", "2\\sqrt{3}", "(1, 2]", "x^2+1", "-17"]  # 1 in 8 rows: a new gold (no cache hit)
    out = []
    for i in range(n):
        content = f"Problem {i}: compute the value.\n\nPut your final answer within \\boxed{{}}."
        row = {"data_source": "hiyouga/geometry3k" if images else "openai/gsm8k",
               "prompt": [{"role": "user", "content": ("<image>" if images else "") + content}],
               "ability": "math",
               "reward_model": {"style": "rule", "ground_truth": str(i) if i % 8 == 0 else golds[i % len(golds)]},
               "extra_info": {"split": "train", "index": i}}
        if images:
            row["images"] = [{"bytes": png(i)}]
        out.append(row)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, images in (("text", False), ("images", True)):
            n = args.rows if not images else args.rows // 4
            path = Path(tmp) / f"{name}.parquet"
            pq.write_table(pa.Table.from_pylist(rows(n, images)), path)
            size = path.stat().st_size / 1e6
            check_file(path, decode=True)  # warm-up: imports, routes, first decodes
            for mode, decode in (("cheap (start-up)", False), ("full (decode images)", True)):
                times = []
                for _ in range(3):  # best of 3: the box is shared
                    start = time.perf_counter()
                    report = check_file(path, decode=decode)
                    times.append(time.perf_counter() - start)
                seconds = min(times)
                assert report.rows == n and not report.bad, report.summary()
                print(f"{name:7s} {n:6d} rows {size:7.1f} MB  {mode:22s} {seconds:6.2f} s  {n / seconds:9,.0f} rows/s")


if __name__ == "__main__":
    main()
