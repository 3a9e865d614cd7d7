"""A line-by-line port of `e5.c`'s tokenizer (`tok_content`), the reference the fast tokenizer is tested against."""

from __future__ import annotations

from train.modeling.e5 import METASPACE, E5File


class ReferenceTokenizer:
    def __init__(self, e5: E5File):
        self.e5 = e5
        self.ids = {piece: i for i, piece in enumerate(e5.pieces)}
        self.unk_score = float(min(e5.scores)) - 10.0
        self.max_piece_bytes = max(len(p.encode("utf-8")) for p in e5.pieces)

    def content_ids(self, text: str) -> list[int]:
        """Ids without <s> and </s>, as e5.c computes them."""
        chars = []
        for c in text:
            chars.extend(self.e5.normalization.get(ord(c), c))
        collapsed = []
        for c in chars:
            if c == " " and collapsed and collapsed[-1] == " ":
                continue
            collapsed.append(c)
        symbols = ([] if collapsed and collapsed[0] == " " else [METASPACE]) + \
                  [METASPACE if c == " " else c for c in collapsed]
        n = len(symbols)
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(-1, 0)] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            if best[i] <= -1e29:
                continue
            width = 0
            for end in range(i + 1, n + 1):
                width += len(symbols[end - 1].encode("utf-8"))
                if width > self.max_piece_bytes:
                    break
                piece = self.ids.get("".join(symbols[i:end]))
                if piece is not None and piece != self.e5.unk_id:
                    score = best[i] + float(self.e5.scores[piece])
                    if score > best[end]:
                        best[end], back[end] = score, (piece, i)
            unknown = best[i] + self.unk_score
            if unknown > best[i + 1]:
                best[i + 1], back[i + 1] = unknown, (-1, i)
        ids, position = [], n
        while position > 0:
            piece, start = back[position]
            ids.append(self.e5.unk_id if piece < 0 else piece)
            position = start
        return ids[::-1]
