"""Generated nonsense (random letters, repeated keys, keyboard mash, random CJK) the fallback learns from.

A classifier trained only on real intents has no notion of "none of these": a calibrated softmax
spreads its confidence over the intents it knows, and short gibberish such as "jjjjjjjj" or
"фывапролдж" lands on ``greet`` or ``goodbye`` at 0.5-0.9, above any threshold that keeps real
questions answered. Training therefore adds a class of generated nonsense (predicted as
``nlu_fallback``) and checks the tuned fallback policy against more nonsense generated with another
seed (``nlu.training``, ``nlu.fallback.tune_fallback``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from nlu.featurizer import normalize

LATIN = "abcdefghijklmnopqrstuvwxyz"
CYRILLIC = "абвгдежзийклмнопрстуфхцчшщыьэюя"
KEYBOARD_ROWS = (
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "йцукенгшщзх",
    "фывапролджэ",
    "ячсмитьбю",
)
_CJK_FIRST, _CJK_LAST = 0x4E00, 0x9FA5  # CJK Unified Ideographs, the block Chinese text is written in

Generator = Callable[[np.random.Generator, str], str]


def _words(rng: np.random.Generator, alphabet: str, *, max_words: int) -> str:
    letters = list(alphabet)
    return " ".join(
        "".join(rng.choice(letters, int(rng.integers(3, 10))))
        for _ in range(int(rng.integers(1, max_words + 1)))
    )


def _latin_words(rng: np.random.Generator, _cjk: str) -> str:
    """'asdkjh qwpoeiru': one to three words of random Latin letters."""
    return _words(rng, LATIN, max_words=3)


def _cyrillic_words(rng: np.random.Generator, _cjk: str) -> str:
    """One or two words of random Cyrillic letters."""
    return _words(rng, CYRILLIC, max_words=2)


def _repeated_key(rng: np.random.Generator, _cjk: str) -> str:
    """'jjjjjjjj': one letter held down."""
    return str(rng.choice(list(LATIN + CYRILLIC))) * int(rng.integers(4, 13))


def _keyboard_mash(rng: np.random.Generator, _cjk: str) -> str:
    """'asdfgh', 'фывапролдж': a run along one keyboard row, either way, sometimes twice."""
    row = KEYBOARD_ROWS[int(rng.integers(len(KEYBOARD_ROWS)))]
    start = int(rng.integers(0, len(row) - 3))
    run = row[start : start + int(rng.integers(4, len(row) - start + 1))]
    run = run[::-1] if rng.random() < 0.3 else run
    return run + run if rng.random() < 0.2 else run


def _random_ideographs(rng: np.random.Generator, _cjk: str) -> str:
    """Three to eight characters drawn from the whole CJK block (mostly rare ones)."""
    return "".join(
        chr(int(code)) for code in rng.integers(_CJK_FIRST, _CJK_LAST + 1, int(rng.integers(3, 9)))
    )


def _shuffled_ideographs(rng: np.random.Generator, cjk: str) -> str:
    """Three to eight of the CJK characters the training data uses, in random order."""
    if not cjk:
        return _random_ideographs(rng, cjk)
    return "".join(rng.choice(list(cjk), int(rng.integers(3, 9))))


GENERATORS: tuple[Generator, ...] = (
    _latin_words,
    _repeated_key,
    _keyboard_mash,
    _cyrillic_words,
    _random_ideographs,
    _shuffled_ideographs,
)


def generate_nonsense(count: int, *, random_state: int, known_texts: Iterable[str] = ()) -> list[str]:
    """``count`` distinct nonsense strings, the kinds in turn; none equals a known text once normalised.

    ``known_texts`` (the training messages) supply the CJK characters that the shuffled kind draws
    from, so that "random Chinese characters" includes common ones, not only rare ones.
    """
    known = {normalize(text) for text in known_texts}
    cjk = "".join(sorted({c for text in known for c in text if _CJK_FIRST <= ord(c) <= _CJK_LAST}))
    rng = np.random.default_rng(random_state)
    out: dict[str, None] = {}
    attempts = 0
    while len(out) < count and attempts < 20 * count:
        text = GENERATORS[attempts % len(GENERATORS)](rng, cjk)
        attempts += 1
        if normalize(text) not in known:
            out.setdefault(text)
    return list(out)
