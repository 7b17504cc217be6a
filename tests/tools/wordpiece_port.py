#!/usr/bin/python3
"""An independent Python port of Hugging Face's slow BertTokenizer (4.44), for
randomized comparison with mmfuse's C++ WordPiece tokenizer.

It uses Python's own unicodedata / str methods (Python 3.11, Unicode 14.0: the
tables the reference outputs were made with), which the C++ side emulates with
utf8proc. Only the configuration of the test folders is covered: do_lower_case
(per-character lower-casing pre-pass), strip_accents null, CJK splitting,
punctuation split, the five default special tokens, WordPiece with
max_input_chars_per_word 100.

Usage:
  wordpiece_port.py VOCAB_TXT --random N --seed S     prints JSON [{"text", "ids"}, ...]
"""

import argparse
import json
import random
import re
import unicodedata

SPECIALS = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]


def load_vocab(path):
    vocab = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f.readlines()):
            vocab[line.rstrip("\n")] = i
    return vocab


def is_control(c):
    if c in "\t\n\r":
        return False
    return unicodedata.category(c).startswith("C")


def is_space(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def is_punct(c):
    o = ord(c)
    if 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126:
        return True
    return unicodedata.category(c).startswith("P")


CJK = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
       (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def is_cjk(c):
    o = ord(c)
    return any(a <= o <= b for a, b in CJK)


def basic(text):
    chars = []
    for c in text:
        if ord(c) in (0, 0xFFFD) or is_control(c):
            continue
        if is_space(c):
            chars.append(" ")
        elif is_cjk(c):
            chars.append(" " + c + " ")
        else:
            chars.append(c)
    words = []
    for w in unicodedata.normalize("NFC", "".join(chars)).split():
        if w not in SPECIALS:
            w = "".join(c for c in unicodedata.normalize("NFD", w.lower()) if unicodedata.category(c) != "Mn")
            piece = ""
            for c in w:
                if is_punct(c):
                    if piece:
                        words.append(piece)
                    words.append(c)
                    piece = ""
                else:
                    piece += c
            if piece:
                words.append(piece)
        else:
            words.append(w)
    return " ".join(words).split()


def wordpiece(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    out, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            cand = ("##" if start else "") + word[start:end]
            if cand in vocab:
                out.append(cand)
                start = end
                break
        else:
            return ["[UNK]"]
    return out


def encode(text, vocab):
    # Lower-case every character except inside the special-token strings ('.' skips "\n").
    alt = "|".join(re.escape(s) for s in SPECIALS)
    text = re.sub("(" + alt + ")|(.+?)", lambda m: m.group(1) or m.group(2).lower(), text)
    tokens = []
    for chunk in re.split("(" + alt + ")", text):
        if chunk in SPECIALS:
            tokens.append(chunk)
        elif chunk:
            for w in basic(chunk):
                tokens.extend(wordpiece(w, vocab))
    return [vocab["[CLS]"]] + [vocab.get(t, vocab["[UNK]"]) for t in tokens] + [vocab["[SEP]"]]


# Pools the random strings draw from: scripts, punctuation of several blocks,
# accents, emoji, full-width forms, whitespace and format characters.
POOLS = [
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后",
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "，。！？、；：“”‘’（）【】《》—…·「」『』〈〉～",
    "ＡＢＣａｂｃ０１２３！＂＃＄％＆＇（）＊＋，－．／：；＜＝＞？＠［＼］＾＿｀｛｜｝",
    "àáâãäåçèéêëìíîïñòóôõöùúûüýÿÀÉÎÕÜßæøœΣσςΑΒΓαβγДЖЗжзİıŁł",
    "あいうえおカキクケコ한국어텍스트",
    "😀🐱👍🏽🇨🇳❤️✨",
    " \t\n\u3000\u00a0\u200b\u200d\u00ad\u2028",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "²³¹₂₃½ⅫⅣ①②",
]
WORDS = ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[cls]", "hello", "unaffable", "playing", "北京", "2008年",
         "https://example.com/a?b=1", "𠀀", "㐀", "豈", "e\u0301", "A\u030a"]


def random_text(rng):
    parts = []
    for _ in range(rng.randint(0, 12)):
        if rng.random() < 0.2:
            parts.append(rng.choice(WORDS))
        else:
            pool = rng.choice(POOLS)
            parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        if rng.random() < 0.5:
            parts.append(" ")
    return "".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vocab")
    ap.add_argument("--random", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    vocab = load_vocab(args.vocab)
    rng = random.Random(args.seed)
    cases = [random_text(rng) for _ in range(args.random)]
    print(json.dumps([{"text": t, "ids": encode(t, vocab)} for t in cases], ensure_ascii=False))


if __name__ == "__main__":
    main()
