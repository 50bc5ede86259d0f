"""Offline sources of real text for the realistic profile: prose and code.

Nothing is downloaded: prose is a word-bigram model of the standard library's
own docstrings (real English with its natural n-gram statistics: common
bigrams, a long tail of rare trigrams), code is the standard library's own
functions with their identifiers renamed per use, so that no two payloads
share long runs of text by construction. The corpus is read from the running
Python, so the same seed gives the same logs on the same Python version.
"""

from __future__ import annotations

import importlib
import inspect
import re
from functools import lru_cache

import numpy as np

MODULES = (
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "concurrent.futures",
    "configparser", "contextlib", "csv", "dataclasses", "datetime", "decimal", "difflib",
    "email.message", "enum", "fractions", "functools", "gettext", "glob", "gzip", "hashlib",
    "heapq", "hmac", "html", "http.client", "http.server", "imaplib", "inspect", "ipaddress",
    "itertools", "json", "locale", "logging", "mailbox", "mimetypes", "numbers", "operator",
    "optparse", "os", "pathlib", "pickle", "platform", "plistlib", "pprint", "queue", "random",
    "re", "sched", "secrets", "selectors", "shelve", "shlex", "shutil", "smtplib", "socket",
    "socketserver", "sqlite3", "ssl", "statistics", "string", "struct", "subprocess", "tarfile",
    "tempfile", "textwrap", "threading", "timeit", "tokenize", "trace", "traceback", "typing",
    "unittest", "urllib.parse", "urllib.request", "uuid", "warnings", "wave", "weakref",
    "xml.dom.minidom", "xml.etree.ElementTree", "zipfile", "zoneinfo",
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[.,;:?!]?")
_IDENT = re.compile(r"\b[a-z_][a-z0-9_]{2,}\b")
_KEYWORDS = frozenset(("def", "return", "self", "for", "while", "not", "and", "with", "yield",
                       "else", "elif", "try", "except", "raise", "import", "from", "class",
                       "lambda", "None", "True", "False", "pass", "break", "continue", "assert",
                       "global", "nonlocal", "async", "await", "finally", "del", "print", "len",
                       "range", "isinstance", "str", "int", "list", "dict", "set", "tuple"))


@lru_cache(maxsize=1)
def _corpus() -> tuple[list[str], list[str]]:
    """(docstrings, function sources) of ``MODULES``, in a fixed order."""
    docs, code = [], []
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:  # a module this Python build lacks
            continue
        for obj in _members(mod):
            doc = inspect.getdoc(obj)
            if doc:
                docs.append(doc)
            if inspect.isfunction(obj):
                try:
                    code.append(inspect.getsource(obj))
                except (OSError, TypeError):
                    pass
    return docs, code


def _reference_topics() -> list[str]:
    """The language reference's help topics (``pydoc_data``), where this build has them."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return []
    return [topics[k] for k in sorted(topics)]


def _members(mod) -> list:
    out = [mod]
    for name, obj in sorted(vars(mod).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if inspect.isfunction(obj):
            out.append(obj)
        elif inspect.isclass(obj):
            out.append(obj)
            out.extend(o for n, o in sorted(vars(obj).items())
                       if inspect.isfunction(o) and not n.startswith("_"))
    return out


class ProseModel:
    """Word-bigram model of real prose; ``take`` writes fresh text of given lengths.

    Generation is vectorised over many chains at once; a payload is a run of one
    chain's words, cut at sentence ends, with paragraph breaks.
    """

    #: Share of words replaced by a uniformly drawn word of the vocabulary: real text's
    #: long tail of rare content words (and of rare trigrams) that a bigram model of a
    #: small corpus lacks.
    RARE = 0.12

    def __init__(self):
        words = []
        for doc in _corpus()[0] + _reference_topics():
            for para in doc.split("\n\n"):
                if ">>>" in para or para.count("(") > 3:
                    continue  # examples and signatures, not prose
                words.extend(_WORD.findall(para))
        vocab, ids = np.unique(np.array(words), return_inverse=True)
        self.vocab = vocab
        pairs = np.unique(ids[:-1].astype(np.int64) * len(vocab) + ids[1:])
        src, self.next = pairs // len(vocab), (pairs % len(vocab)).astype(np.int64)
        self.start = np.searchsorted(src, np.arange(len(vocab) + 1))
        self.ends = np.array([w[-1] in ".?!" for w in vocab])
        starts = np.flatnonzero(np.r_[True, self.ends[ids[:-1]]])
        self.openers = np.unique(ids[starts])

    def words(self, rng: np.random.Generator, total: int, chains: int = 4096) -> np.ndarray:
        """int64[total] word ids: ``chains`` walks laid end to end."""
        steps = -(-total // chains)
        out = np.empty((chains, steps), np.int64)
        cur = rng.choice(self.openers, chains)
        for t in range(steps):
            out[:, t] = cur
            lo, hi = self.start[cur], self.start[cur + 1]
            dead = hi == lo
            nxt = self.next[np.minimum(lo + (rng.random(chains) * (hi - lo)).astype(np.int64),
                                       len(self.next) - 1)]
            restart = dead | (self.ends[cur] & (rng.random(chains) < 0.02))
            cur = np.where(restart, rng.choice(self.openers, chains), nxt)
        out = out.ravel()[:total]
        rare = np.flatnonzero(rng.random(total) < self.RARE)
        out[rare] = rng.integers(0, len(self.vocab), rare.size)
        return out

    def take(self, rng: np.random.Generator, lengths) -> list[str]:
        """One text per requested length (in words), sentences whole, paragraphs split."""
        lengths = np.maximum(np.asarray(lengths, np.int64), 1)
        ids = self.words(rng, int(lengths.sum()) + 64)
        cuts = np.r_[0, np.cumsum(lengths)]
        para = rng.random(ids.size) < 0.06
        texts = []
        for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
            w = self.vocab[ids[a:b]].tolist()
            w[0] = w[0][:1].upper() + w[0][1:]
            brk = np.flatnonzero(self.ends[ids[a:b - 1]] & para[a:b - 1])
            for j in brk.tolist():
                w[j] += "\n\n"
            texts.append(" ".join(w).replace("\n\n ", "\n\n"))
        return texts


class CodeBank:
    """Real functions, identifiers renamed per use, sliced to the asked number of lines."""

    def __init__(self):
        self.funcs = [textwrap_dedent(s) for s in _corpus()[1] if s.count("\n") >= 3]
        self.names = sorted({w for s in self.funcs for w in _IDENT.findall(s)} - _KEYWORDS)

    def take(self, rng: np.random.Generator, lines) -> list[str]:
        out = []
        for want in np.maximum(np.asarray(lines, np.int64), 3).tolist():
            parts, have = [], 0
            while have < want:
                src = self.funcs[int(rng.integers(len(self.funcs)))]
                parts.append(self._rename(rng, src))
                have += src.count("\n")
            text = "\n\n".join(parts).split("\n")
            out.append("\n".join(text[:want]))
        return out

    def _rename(self, rng, src: str) -> str:
        idents = sorted(set(_IDENT.findall(src)) - _KEYWORDS)
        swap = {w: self.names[int(rng.integers(len(self.names)))] + ("_" + str(int(
            rng.integers(100))) if rng.random() < 0.5 else "") for w in idents
            if rng.random() < 0.6}
        return _IDENT.sub(lambda m: swap.get(m.group(0), m.group(0)), src)


def textwrap_dedent(src: str) -> str:
    import textwrap
    return textwrap.dedent(src)


@lru_cache(maxsize=1)
def prose_model() -> ProseModel:
    return ProseModel()


@lru_cache(maxsize=1)
def code_bank() -> CodeBank:
    return CodeBank()
