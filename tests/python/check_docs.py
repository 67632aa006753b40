"""Every column of every table in DATA_DIR is documented in docs/data.md, under its table's heading.

Usage: python3 check_docs.py DATA_DIR
"""
import pathlib
import re
import sys

import pyarrow.parquet as pq

data = pathlib.Path(sys.argv[1])
doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "data.md").read_text()
# Split the contract into sections by "## " heading; a table's section names its file.
sections = re.split(r"^## ", doc, flags=re.M)
checked, missing = 0, []
for f in sorted(data.glob("*.parquet")):
    sec = [s for s in sections if f.name in s.splitlines()[0]]
    if not sec:
        missing.append(f"{f.name}: no section in docs/data.md")
        continue
    for c in pq.read_schema(f).names:
        checked += 1
        if f"`{c}`" not in sec[0] and not re.search(rf"`[^`]*\b{re.escape(c)}\b[^`]*`", sec[0]):
            missing.append(f"{f.name}: column {c}")
assert not missing, "undocumented in docs/data.md: " + "; ".join(missing)
assert checked > 0, f"no tables in {data}"
print(f"check_docs: {checked} columns of {len(list(data.glob('*.parquet')))} tables documented")
