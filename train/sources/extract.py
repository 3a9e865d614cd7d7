"""Rule-based source attribution (data/GUIDELINES.md §9): who each sentence of an article quotes, and how.

Per sentence: mentions (natasha NER, the roles table's role phrases, aliases and anonymous phrases, pronouns,
collective nouns such as "Президенты"), then attribution: a mention is a source when it stands where a
source stands (the subject of a verb of saying, after "по словам", "в X заявили", before a headline colon),
then the quote kind from the punctuation. The speaker class, when given, gates and orders the result: a
`none` sentence gets no source, and the first source is the one the class names (Putin for `putin`);
a sentence with a speaker but no mention of its own continues the previous sentence's sources.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field, replace

from train.sources.nlp import Analysis, Analyzer, Token, shared_analyzer
from train.sources.roles import RolesTable
from train.sources.schema import Source

# Verbs of saying, stance and joint decision whose subject is a source (lemmas).
CUE_VERBS = frozenset("""
заявить заявлять сообщить сообщать подчеркнуть подчёркнуть подчеркивать отметить отмечать сказать говорить
добавить добавлять считать полагать указать указывать напомнить напоминать назвать называть признать признавать
предупредить предупреждать пояснить пояснять уточнить уточнять рассказать рассказывать объявить объявлять
выразить выражать призвать призывать заверить заверять пообещать обещать настаивать настоять утверждать оценить
оценивать отвергнуть отвергать обратить допустить допускать изложить излагать обсудить обсуждать договориться
договариваться условиться предложить предлагать потребовать требовать пожаловаться посетовать возразить
ответить отвечать подтвердить подтверждать писать опасаться отрицать приветствовать поддержать сослаться
упомянуть согласиться обвинить раскритиковать критиковать высказаться высказать передать сравнить убеждать
обещать констатировать прокомментировать комментировать пригрозить угрожать поблагодарить признать
охарактеризовать поручить распорядиться потребовать вспомнить обменяться затронуть апеллировать остановиться
объяснить объяснять жаловаться намерен намереваться рассчитывать ждать ожидать отреагировать реагировать
перечислить повторить повторять обозначить сойтись отказаться отвергнуть
""".split())
# "по словам X", "по данным X": the genitive after them is the source (or its relayer).
ACCORDING_TO = frozenset("слово данные мнение оценка информация версия расчёт расчет сведение".split())
# Collective mentions of the two sides of the talks (speaker `both`).
COLLECTIVE = frozenset("президент лидер сторона делегация министр собеседник переговорщик глава".split())
PRONOUNS = {"он": "one", "она": "one", "его": "one", "её": "one", "ее": "one", "они": "many", "их": "many"}
# Nouns that introduce a person's name ("политолог Андрей Смирнов"); the mention takes them in.
DESCRIPTORS = frozenset("""
политолог эксперт аналитик историк министр глава посол постпред сенатор директор специалист экономист
американист исследователь сотрудник помощник советник пресс-секретарь представитель замминистра заместитель
генсек секретарь президент госсекретарь замглавы партнёр партнер коллега
""".split())
SINGULAR_EXPERT = frozenset("эксперт аналитик политолог историк специалист экономист собеседник".split())
QUOTE_OPEN = "«„“\""
DASHES = "—–"
FIRST_PERSON = re.compile(r"(?<!\w)(мы|нам|нас|наш\w*|я|меня|мне)(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class SentenceSources:
    sources: tuple[Source, ...]
    quote: str  # direct, indirect or none


@dataclass
class _Mention:
    start: int  # character offsets in the sentence
    end: int
    names: tuple[str, ...]  # canonical names it refers to (two for "Президенты")
    kind: str  # person, organization, anonymous
    weak: bool = False  # a place, pronoun or collective: a source only where a source stands, never by default
    first_token: int = 0
    last_token: int = 0


@dataclass
class _Article:
    """What the article has said so far: resolves pronouns, surnames and "Стороны"."""

    full_names: dict[str, str] = field(default_factory=dict)  # surname -> full name
    person_counts: Counter = field(default_factory=Counter)
    previous: tuple[Source, ...] = ()
    last_person: str | None = None
    last_expert: str | None = None  # the last named person not in the roles table
    quote_open: bool = False


class SourceExtractor:
    """`extract(sentences, speakers)`: the sources and quote kind of every sentence of one article."""

    def __init__(self, roles: RolesTable, analyzer: Analyzer | None = None):
        self.roles = roles
        self.analyzer = analyzer or shared_analyzer()
        self._phrases: list[tuple[tuple[frozenset[str], ...], str, str]] = []  # (lemma sets, name, kind)
        self._role_heads: dict[str, list[str]] = {}  # a role's first lemma -> the people whose roles start with it
        for person in roles.people:
            for phrase in person.aliases:
                self._add(phrase, person.name, "person")
            for phrase in person.roles:
                self._add(phrase, person.name, "role")
                for lemma in self._lemmas(phrase)[0]:
                    self._role_heads.setdefault(lemma, []).append(person.name)
        for org in roles.organizations:
            for phrase in org.aliases:
                self._add(phrase, org.name, "organization")
        for group in roles.anonymous:
            for phrase in group.phrases:
                self._add(phrase, group.name, "anonymous")
        self._phrases.sort(key=lambda p: -len(p[0]))  # longest first
        self._by_first: dict[str, list[tuple[tuple[frozenset[str], ...], str, str]]] = {}
        for phrase in self._phrases:
            for lemma in phrase[0][0]:
                self._by_first.setdefault(lemma, []).append(phrase)
        self._places = {o.name for o in roles.organizations if o.name in ("Россия", "США", "Украина", "Эстония",
                                                                          "Латвия", "Литва", "Польша")}

    def _lemmas(self, phrase: str) -> tuple[frozenset[str], ...]:
        return tuple(self.analyzer.lemmas(word) for word in re.findall(r"[\w.-]+", phrase))

    def _add(self, phrase: str, name: str, kind: str) -> None:
        self._phrases.append((self._lemmas(phrase), name, kind))

    # -- mentions ---------------------------------------------------------------------------------------------

    def _match_phrases(self, tokens: tuple[Token, ...], day: dt.date | None) -> list[tuple[int, int, str, str]]:
        """(first token, last token, name, kind) of every roles-table phrase, longest first, not overlapping."""
        candidates = []
        for i, token in enumerate(tokens):
            for lemma in token.lemmas:
                for lemmas, name, kind in self._by_first.get(lemma, ()):
                    n = len(lemmas)
                    if i + n <= len(tokens) and all(lemmas[j] & tokens[i + j].lemmas for j in range(1, n)) \
                            and (kind != "role" or self._holds(name, day)):
                        candidates.append((n, i, name, kind))
        taken = [False] * len(tokens)
        found = []
        for n, i, name, kind in sorted(candidates, key=lambda c: (-c[0], c[1])):
            if not any(taken[i:i + n]):
                found.append((i, i + n - 1, name, kind))
                taken[i:i + n] = [True] * n
        return found

    def _holds(self, name: str, day: dt.date | None) -> bool:
        return any(p.name == name and p.holds_roles_on(day) for p in self.roles.people)

    def _mentions(self, text: str, analysis: Analysis, memory: _Article, day: dt.date | None) -> list[_Mention]:
        tokens = analysis.tokens
        index = {t.start: i for i, t in enumerate(tokens)}
        mentions: list[_Mention] = []
        covered: set[int] = set()
        for first, last, name, kind in self._match_phrases(tokens, day):
            place = kind == "organization" and name in self._places
            mention_kind = "person" if kind in ("person", "role") else kind
            if kind == "anonymous" and tokens[first].lemmas & SINGULAR_EXPERT and tokens[first].text[-1:] not in "иы":
                # "— говорит эксперт": the named expert just quoted, not an anonymous group
                if memory.last_expert:
                    name, mention_kind = memory.last_expert, "person"
            mentions.append(_Mention(tokens[first].start, tokens[last].stop, (name,), mention_kind, weak=place,
                                     first_token=first, last_token=last))
            covered.update(range(first, last + 1))
        for entity in analysis.entities:
            first, last = index.get(entity.start), None
            for i in range(first or 0, len(tokens)):
                if tokens[i].stop <= entity.stop:
                    last = i
            if first is None or last is None:
                continue
            overlapping = [m for m in mentions if m.first_token <= last and first <= m.last_token]
            if entity.type == "PER":
                name = self._person_name(entity.first, entity.last, entity.normal, memory)
                known = [m for m in overlapping if m.kind == "person"]
                if known:  # an alias inside the span ("Эдгар Ринкевичс"): widen the mention, keep the table's name
                    for m in known:
                        m.start, m.end = min(m.start, entity.start), max(m.end, entity.stop)
                        m.first_token, m.last_token = min(m.first_token, first), max(m.last_token, last)
                    continue
                if overlapping:
                    continue
                mentions.append(_Mention(entity.start, entity.stop, (name,), "person", first_token=first,
                                         last_token=last))
                covered.update(range(first, last + 1))
            elif entity.type == "ORG" and not overlapping:
                mentions.append(_Mention(entity.start, entity.stop, (entity.normal,), "organization",
                                         first_token=first, last_token=last))
                covered.update(range(first, last + 1))
        mentions = self._merge_titles(mentions, tokens)
        covered = {i for m in mentions for i in range(m.first_token, m.last_token + 1)}
        for i, token in enumerate(tokens):
            if i in covered:
                continue
            word = token.text.lower()
            if word in PRONOUNS and token.pos == "PRON" and memory.previous:
                names = self._pronoun(PRONOUNS[word], memory)
                if names:
                    kind = next((s.type for s in memory.previous if s.name == names[0]), "person")
                    mentions.append(_Mention(token.start, token.stop, names, kind, weak=True, first_token=i,
                                             last_token=i))
            elif token.lemmas & COLLECTIVE and token.pos == "NOUN" and self._plural(token, tokens, i):
                last = i + 1 if i + 1 < len(tokens) and tokens[i + 1].lemmas & {"государство"} else i
                mentions.append(_Mention(token.start, tokens[last].stop, self._pair(token, memory), "person",
                                         weak=True, first_token=i, last_token=last))
            elif token.pos == "NOUN" and token.lemmas & set(self._role_heads) and memory.last_person:
                # a bare role noun ("Замминистра назвал…", "Госсекретарь добавил…"): the last person who holds it
                holders = {n for lemma in token.lemmas & set(self._role_heads) for n in self._role_heads[lemma]}
                recent = [n for n in memory.person_counts if n in holders]
                if memory.last_person in holders:
                    recent = [memory.last_person]
                if recent:
                    mentions.append(_Mention(token.start, token.stop, (recent[-1],), "person", weak=True,
                                             first_token=i, last_token=i))
        return sorted(mentions, key=lambda m: m.start)

    @staticmethod
    def _plural(token: Token, tokens: tuple[Token, ...], i: int) -> bool:
        """A collective noun in the plural ("Президенты", "Стороны"), or "главы государств", "Оба лидера"."""
        plural_ending = token.text.lower().endswith(("ы", "и", "ов", "ей", "ам", "ами"))
        both = i > 0 and tokens[i - 1].text.lower() in ("оба", "обе", "обоих")
        return plural_ending or both

    def _person_name(self, first: str | None, last: str | None, normal: str, memory: _Article) -> str:
        if first and last:
            return f"{first} {last}"
        if last and last in memory.full_names:
            return memory.full_names[last]
        return normal

    @staticmethod
    def _pronoun(number: str, memory: _Article) -> tuple[str, ...]:
        people = [s.name for s in memory.previous]
        if not people:
            return ()
        return tuple(people) if number == "many" else (people[0],)

    def _pair(self, token: Token, memory: _Article) -> tuple[str, ...]:
        """The two sides: the presidents for "Президенты", else the most cited Russian and foreign person so far."""
        presidents = ("Владимир Путин", "Джо Байден")
        if token.lemmas & {"президент", "лидер", "глава"}:
            return presidents
        russian = [n for n, _ in memory.person_counts.most_common() if self.roles.side_of(n) == "russia"]
        foreign = [n for n, _ in memory.person_counts.most_common() if self.roles.side_of(n) in ("us", "other")
                   and self.roles.is_person(n)]
        if russian and foreign:
            return russian[0], foreign[0]
        return presidents

    @staticmethod
    def _merge_titles(mentions: list[_Mention], tokens: tuple[Token, ...]) -> list[_Mention]:
        """A title before a name joins it ("помощник президента Юрий Ушаков"), keeping the name's canonical form."""
        mentions = sorted(mentions, key=lambda m: m.start)
        merged: list[_Mention] = []
        for m in mentions:
            if merged and m.kind == "person" and merged[-1].last_token + 1 == m.first_token \
                    and merged[-1].kind == "person" and not merged[-1].weak:
                title = merged.pop()
                m = replace(m, start=title.start, first_token=title.first_token)
            merged.append(m)
        for m in merged:  # descriptors before a name ("Латвийский политолог Карлис Озолс")
            if m.kind != "person" or m.weak:
                continue
            i = m.first_token - 1
            while i >= 0 and tokens[i].pos in ("ADJ", "NOUN", "PROPN") and m.first_token - i <= 6:
                if tokens[i].lemmas & DESCRIPTORS:
                    while i > 0 and tokens[i - 1].pos == "ADJ":
                        i -= 1
                    m.start, m.first_token = tokens[i].start, i
                    break
                i -= 1
        return merged

    # -- attribution ------------------------------------------------------------------------------------------

    def _is_source(self, m: _Mention, text: str, tokens: tuple[Token, ...], has_cue: bool) -> bool:
        head = tokens[m.last_token] if m.kind == "person" and not m.weak else tokens[m.first_token]
        before = tokens[m.first_token - 1] if m.first_token > 0 else None
        before2 = tokens[m.first_token - 2] if m.first_token > 1 else None
        if before is not None and before.lemmas & ACCORDING_TO and before2 is not None and before2.text.lower() == "по":
            return True
        if before is not None and before.lemmas & {"согласно"}:
            return True
        if ":" in text[m.end:m.end + 2] and m.first_token <= 1:
            return True  # a headline "Кремль: …"
        if not has_cue:
            return False
        if before is not None and before.text.lower() in ("в", "во") and head.case == "Loc":
            return True  # "В Кремле заявили", "как сообщили в Белом доме"
        return head.case == "Nom" or (m.weak and head.pos == "PRON" and head.text.lower() in ("он", "она", "они"))

    def _attribute(self, text: str, analysis: Analysis, mentions: list[_Mention]) -> list[Source]:
        tokens = analysis.tokens
        has_cue = any(t.lemmas & CUE_VERBS for t in tokens) or bool(re.search(r"\bпо (его|ее|её|их) \w+", text))
        sources: list[Source] = []
        seen = set()
        for m in mentions:
            if not self._is_source(m, text, tokens, has_cue):
                continue
            for name in m.names:
                if name in seen:
                    continue
                seen.add(name)
                kind = "anonymous" if any(name == g.name for g in self.roles.anonymous) else m.kind
                sources.append(Source(name, text[m.start:m.end], m.start, m.end, kind))
        return sources

    def _order(self, sources: list[Source], speaker: str | None, memory: _Article) -> list[Source]:
        """The speaker class's source first; a same-side institution or official relays a president's words."""
        if speaker is None:
            return sources
        wanted = {"putin": ("Владимир Путин",), "biden": ("Джо Байден",),
                  "both": ()}.get(speaker)
        if wanted:
            main = next((s for s in sources if s.name == wanted[0]), None)
            if main is None:  # "С российской стороны предложено…": the president, not named here
                previous = next((s for s in memory.previous if s.name == wanted[0]), None)
                main = Source(wanted[0], None, None, None, "person", previous.relayed_by if previous else None)
            side = self.roles.side_of(wanted[0])
            relayers = [s for s in sources if s.name != main.name and self.roles.side_of(s.name) == side]
            if relayers and main.relayed_by is None:
                main = replace(main, relayed_by=relayers[0].name)
            rest = [s for s in sources if s.name != main.name and s not in relayers]
            return [main, *rest]
        if speaker == "both":
            return sources if len(sources) >= 2 else [*sources, *[s for s in self._pair_sources(memory)
                                                                   if s.name not in {x.name for x in sources}]]
        side = {"russia_official": ("russia",), "us_official": ("us",), "other": ("other", None)}.get(speaker, ())
        matching = [s for s in sources if self.roles.side_of(s.name) in side]
        return [*matching, *[s for s in sources if s not in matching]]

    def _pair_sources(self, memory: _Article) -> list[Source]:
        names = [s.name for s in memory.previous if s.type == "person"]
        pair = names[:2] if len(names) >= 2 else ["Владимир Путин", "Джо Байден"]
        return [Source(n, None, None, None, "person") for n in pair]

    # -- quote kind -------------------------------------------------------------------------------------------

    @staticmethod
    def _quote_kind(text: str, memory: _Article) -> str:
        stripped = text.lstrip()
        opened_before = memory.quote_open
        opens = sum(text.count(c) for c in "«„") + text.count("\"") % 2
        closes = sum(text.count(c) for c in "»“”")
        if "\"" in text and "«" not in text:
            memory.quote_open = (text.count("\"") % 2 == 1) != opened_before
        else:
            memory.quote_open = max(0, opened_before + opens - closes) > 0 if opens or closes else opened_before
        if opened_before or (stripped[:1] and (stripped[0] in QUOTE_OPEN or stripped[0] in DASHES)):
            return "direct"
        if re.search(r"[»\"“”]\s*,?\s*[—–]", text) or re.search(r":\s*[«\"„][^»\"“]{25,}", text):
            return "direct"
        if FIRST_PERSON.search(re.sub(r"[«\"„][^»\"“]*[»\"“]", "", text)) and re.search(r",\s*\w+\s+\w+\.?$", text):
            return "direct"  # "Американцы не прислушиваются к нашей логике, посетовал Рябков."
        return "indirect"

    # -- the article ------------------------------------------------------------------------------------------

    def extract(self, sentences: list[str], speakers: list[str] | None = None,
                date: str | None = None) -> list[SentenceSources]:
        """Sources and quote kind per sentence; `speakers` (gold or predicted) gate and order them when given."""
        day = _parse_day(date)
        memory = _Article()
        results = []
        for number, (text, analysis) in enumerate(zip(sentences, self.analyzer.analyze(sentences))):
            speaker = speakers[number] if speakers is not None else None
            mentions = self._mentions(text, analysis, memory, day)
            sources = self._attribute(text, analysis, mentions)
            continues = memory.quote_open or text.lstrip()[:1] in DASHES
            quote = self._quote_kind(text, memory)
            if speaker == "none":
                sources = []
            elif not sources and memory.previous and (speaker is not None or continues):
                # a continued quote or argument: the previous sentence's sources, not named here
                sources = [replace(s, mention=None, start=None, end=None) for s in memory.previous]
            sources = self._order(sources, speaker, memory) if sources or speaker not in (None, "none") else sources
            if speaker is not None and speaker != "none" and not sources:
                sources = self._order([], speaker, memory)
            sources = self._relay_unnamed(text, sources, memory)
            self._remember(memory, mentions, sources)
            results.append(SentenceSources(tuple(sources), quote if sources else "none"))
        return results

    def _relay_unnamed(self, text: str, sources: list[Source], memory: _Article) -> list[Source]:
        """"— сказано в сообщении", "— рассказали в пресс-службе": the body that relayed the article's last readout."""
        if not sources or sources[0].relayed_by is not None:
            return sources
        if re.search(r"(сказано|говорится) в (сообщении|заявлении)|в пресс-службе", text):
            relayer = next((s.relayed_by for s in memory.previous if s.relayed_by), None)
            if relayer and relayer != sources[0].name:
                return [replace(sources[0], relayed_by=relayer), *sources[1:]]
        return sources

    def _remember(self, memory: _Article, mentions: list[_Mention], sources: list[Source]) -> None:
        for m in mentions:
            for name in m.names:
                if m.kind != "person" or m.weak:
                    continue
                memory.person_counts[name] += 1
                memory.last_person = name
                parts = name.split()
                if len(parts) == 2:
                    memory.full_names[parts[1]] = name
                if not self.roles.is_person(name) and len(parts) == 2:
                    memory.last_expert = name
        if sources:
            memory.previous = tuple(sources)
        else:
            memory.previous = ()


def _parse_day(date: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(date[:10]) if date else None
    except ValueError:
        return None
