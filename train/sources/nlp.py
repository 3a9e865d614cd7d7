"""natasha's slovnet NER and morphology, with lemmas from pymorphy3 (natasha's own MorphVocab needs pymorphy2,
which does not import on Python 3.11 without pkg_resources)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pymorphy3
from pymorphy3.analyzer import Parse


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    stop: int
    pos: str  # universal POS from slovnet's morphology tagger
    case: str | None  # Nom, Gen, Dat, Acc, Ins, Loc, or None
    lemmas: frozenset[str]  # the contextual lemma and every pymorphy3 normal form, lowercase


@dataclass(frozen=True)
class Entity:
    type: str  # PER, ORG or LOC
    start: int
    stop: int
    text: str
    normal: str  # the span in the nominative (natasha's normalisation)
    first: str | None  # for PER: the names extractor's first and last name, in the nominative
    last: str | None


@dataclass(frozen=True)
class Analysis:
    tokens: tuple[Token, ...]
    entities: tuple[Entity, ...]


class _Form(Parse):
    """natasha's MorphForm on pymorphy3's parse: the normal form and the UD tag its normaliser reads."""

    def __new__(cls, *args):
        from natasha.morph.vocab import ud_feats, ud_pos

        self = Parse.__new__(cls, *args)
        self.normal = self.normal_form
        self.pos = ud_pos(self.tag)
        self.feats = dict(ud_feats(self.tag))
        return self

    def inflect(self, grams):
        from natasha.morph.vocab import oc_grams

        return Parse.inflect(self, set(oc_grams(grams)))


class MorphVocab(pymorphy3.MorphAnalyzer):
    """What natasha's MorphVocab offers (parse, lemmatize), on pymorphy3."""

    def __init__(self):
        super().__init__(result_type=_Form)

    parse = lru_cache(20000)(pymorphy3.MorphAnalyzer.parse)
    __call__ = parse

    def lemmatize(self, word, pos, feats):
        from natasha.morph.lemma import lemmatize

        return lemmatize(self, word, pos, feats)


class Analyzer:
    """Sentence analysis with natasha's news models (offline: they ship inside the wheels); loaded once, on first use."""

    def __init__(self):
        from natasha import NamesExtractor, NewsEmbedding, NewsMorphTagger, NewsNERTagger, Segmenter

        self.vocab = MorphVocab()
        embedding = NewsEmbedding()
        self.segmenter = Segmenter()
        self.morph = NewsMorphTagger(embedding)
        self.ner = NewsNERTagger(embedding)
        self.names = NamesExtractor(self.vocab)

    def lemmas(self, word: str) -> frozenset[str]:
        return frozenset(p.normal_form for p in self.vocab.parse(word.lower()))

    @lru_cache(maxsize=256)  # an article measured under several gates is analysed once
    def analyze_article(self, texts: tuple[str, ...]) -> tuple[Analysis, ...]:
        return tuple(self.analyze(list(texts)))

    def analyze(self, texts: list[str]) -> list[Analysis]:
        """One analysis per sentence. The sentences go through the models as one document (one line each):
        slovnet runs batches, which is several times faster than a document per sentence."""
        from natasha import Doc

        joined = "\n".join(texts)
        starts, offset = [], 0
        for text in texts:
            starts.append(offset)
            offset += len(text) + 1
        doc = Doc(joined)
        doc.segment(self.segmenter)
        doc.tag_morph(self.morph)
        doc.tag_ner(self.ner)
        tokens: list[list[Token]] = [[] for _ in texts]
        entities: list[list[Entity]] = [[] for _ in texts]
        which = _Locator(starts)
        for token in doc.tokens:
            token.lemmatize(self.vocab)
            i = which(token.start)
            tokens[i].append(Token(token.text, token.start - starts[i], token.stop - starts[i], token.pos,
                                   token.feats.get("Case"), self.lemmas(token.text) | {token.lemma.lower()}))
        for span in doc.spans:
            span.normalize(self.vocab)
            first = last = None
            if span.type == "PER":
                span.extract_fact(self.names)
                if span.fact is not None:
                    first, last = span.fact.as_dict.get("first"), span.fact.as_dict.get("last")
            i = which(span.start)
            entities[i].append(Entity(span.type, span.start - starts[i], span.stop - starts[i], span.text,
                                      span.normal or span.text, first, last))
        return [Analysis(tuple(t), tuple(e)) for t, e in zip(tokens, entities)]


class _Locator:
    """The sentence a character offset of the joined document falls in."""

    def __init__(self, starts: list[int]):
        self.starts = starts

    def __call__(self, offset: int) -> int:
        import bisect

        return bisect.bisect_right(self.starts, offset) - 1


@lru_cache(maxsize=1)
def shared_analyzer() -> Analyzer:
    """One analyzer per process: the models take a couple of seconds to load."""
    return Analyzer()
