"""Rule-based source attribution (data/GUIDELINES.md §9): who each sentence of an article quotes, and how.

Per sentence: mentions (natasha NER, the roles table's role phrases, aliases and anonymous phrases, pronouns,
collective nouns such as "Президенты"), then attribution: a mention is a source when it stands where a
source stands (the subject of a verb of saying, after "по словам", "в X заявили", before a headline colon),
then the quote kind from the punctuation. The speaker class, when given, gates and orders the result: a
`none` sentence gets no source, and the first source is the one the class names (Putin for `putin`);
a sentence with a speaker but no mention of its own continues the previous sentence's sources. A predicted
class (one given with its probability) needs evidence in the text as well; links to other pages get nothing.
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
упомянуть ссылаться согласиться обвинить раскритиковать критиковать высказаться высказать передать сравнить убеждать
обещать констатировать прокомментировать комментировать пригрозить угрожать поблагодарить признать
охарактеризовать потребовать вспомнить затронуть апеллировать остановиться
объяснить объяснять жаловаться намерен намереваться рассчитывать ждать ожидать отреагировать реагировать
перечислить повторить повторять обозначить сойтись отказаться отвергнуть обращать ответить счесть согласный
опубликовать отнестись исключать хотеть дать добиваться исходить
""".split())
# An order: a president's own decision is his position, an institution's order is an act reported as fact
# (GUIDELINES §2b: "Байден распорядился направить…" is `biden`, "Госдепартамент распорядился вывезти…" `none`).
ORDER_VERBS = frozenset("поручить поручать распорядиться распоряжаться".split())
# The two presidents' speaker classes and canonical names; "both" is the pair.
PRESIDENT_OF = {"putin": "Владимир Путин", "biden": "Джо Байден"}
PRESIDENT_NAMES = frozenset(PRESIDENT_OF.values())
CLASS_OF_PRESIDENT = {name: speaker for speaker, name in PRESIDENT_OF.items()}
# "обменялись мнениями" reports talk, "обменялись высылками" or "репликами" an act: the object decides.
EXCHANGE_VERBS = frozenset("обменяться обмениваться".split())
VIEWS = frozenset("мнение позиция оценка взгляд соображение".split())
# "по словам X", "по данным X": the genitive after them is the source (or its relayer).
ACCORDING_TO = frozenset("слово данные мнение оценка информация версия расчёт расчет сведение".split())
# Nouns for a statement, which "согласно" or "из" ("как следует из сообщений") makes reported speech.
STATEMENT_NOUNS = frozenset("заявление сообщение слово заверение отчёт отчет коммюнике".split())
# Collective mentions of the two sides of the talks (speaker `both`).
COLLECTIVE = frozenset("президент лидер сторона делегация министр собеседник переговорщик глава".split())
PRONOUNS = {"он": "one", "она": "one", "его": "one", "её": "one", "ее": "one", "они": "many", "их": "many"}
# Nouns that introduce a person's name ("политолог Андрей Смирнов"); the mention takes them in.
DESCRIPTORS = frozenset("""
политолог эксперт аналитик историк министр глава посол постпред сенатор директор специалист экономист
американист исследователь сотрудник помощник советник пресс-секретарь представитель замминистра заместитель
генсек секретарь президент госсекретарь замглавы партнёр партнер коллега
""".split())
# A bare noun that stands for the person last named ("— отметил дипломат", "Президент подчеркнул").
GENERIC_PERSON = frozenset("дипломат министр глава замминистра посол президент госсекретарь помощник".split())
CLAUSE_WORDS = frozenset("что чтобы который которая которое которые которого которой которых которым".split())
SINGULAR_EXPERT = frozenset("эксперт аналитик политолог историк специалист экономист собеседник".split())
# Below this probability a predicted speaker class is no evidence on its own that the sentence quotes anyone:
# chosen on the authored articles a tagger trained without them had not seen (README, "Named sources").
PREDICTED_SPEAKER_MIN_CONFIDENCE = 0.5
# Below this probability a predicted class gives way to the text's own attribution of another class ("Лавров
# заявил…" predicted `us_official` gates as `russia_official`): chosen on the leave-event-out and held-out rows.
TEXT_OVER_CLASS_BELOW = 0.6
QUOTE_OPEN = "«„“\""
DASHES = "—–"
# Labels that open a link to another page or the site's tags (GUIDELINES §5): what follows belongs to another
# story, so the names in it ("Читайте также: Песков: …") are nobody this article quotes.
FURNITURE_LABEL = re.compile(r"\s*((читайте|смотрите|читать) также|(также|ранее|еще|ещё) по теме|материалы по теме|"
                             r"теги\s*:)", re.IGNORECASE)
# A label alone on its line ("Читайте также", "Ранее"): the headlines after it, up to the first line that ends
# like a sentence, are links to other stories.
LINK_LIST_LABEL = re.compile(r"\s*((читайте|смотрите|читать) также|((также|ранее|еще|ещё) )?по теме|материалы по теме|"
                             r"ранее)\s*:?\s*$", re.IGNORECASE)
SENTENCE_END = (".", "!", "?", "…", "»", "\"")
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
    head_token: int | None = None  # the word whose case tells the role in the clause; None: the first word


@dataclass
class _Article:
    """What the article has said so far: resolves pronouns, surnames and "Стороны"."""

    full_names: dict[str, str] = field(default_factory=dict)  # surname -> full name
    previous: tuple[Source, ...] = ()
    last_person: str | None = None
    person_order: list[str] = field(default_factory=list)  # people named, in the order of the text
    article_counts: Counter = field(default_factory=Counter)  # people named anywhere in the article
    last_expert: str | None = None  # the last named person not in the roles table
    last_body: str | None = None  # the last organisation named ("в ведомстве" refers to it)
    quote_open: bool = False


class SourceExtractor:
    """`extract(sentences, speakers)`: the sources and quote kind of every sentence of one article."""

    def __init__(self, roles: RolesTable, analyzer: Analyzer | None = None, min_confidence: float = 0.0):
        self.roles = roles
        self.min_confidence = min_confidence
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
        # countries named by their capitals are mostly just places ("в Женеве", "в Москве"): weak mentions
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
        for first, last, name, kind in self._match_phrases(tokens, day):
            place = kind == "organization" and name in self._places
            mention_kind = "person" if kind in ("person", "role") else kind
            if kind == "anonymous" and tokens[first].lemmas & SINGULAR_EXPERT and tokens[first].text[-1:] not in "иы":
                # "— говорит эксперт": the named expert just quoted, not an anonymous group
                if memory.last_expert:
                    name, mention_kind = memory.last_expert, "person"
            mentions.append(_Mention(tokens[first].start, tokens[last].stop, (name,), mention_kind, weak=place,
                                     first_token=first, last_token=last,
                                     head_token=last if kind == "person" else None))
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
                        m.head_token = m.last_token
                    continue
                if overlapping:
                    continue
                mentions.append(_Mention(entity.start, entity.stop, (name,), "person", first_token=first,
                                         last_token=last, head_token=last))
            elif entity.type == "ORG" and not overlapping:
                mentions.append(_Mention(entity.start, entity.stop, (entity.normal,), "organization",
                                         first_token=first, last_token=last))
        mentions = self._merge_titles(mentions, tokens)
        covered = {i for m in mentions for i in range(m.first_token, m.last_token + 1)}
        for i, token in enumerate(tokens):
            if i in covered:
                continue
            word = token.text.lower()
            if word in PRONOUNS and token.pos in ("PRON", "DET") and memory.previous:
                names = self._pronoun(PRONOUNS[word], memory)
                if names:
                    kind = next((s.type for s in memory.previous if s.name == names[0]), "person")
                    mentions.append(_Mention(token.start, token.stop, names, kind, weak=True, first_token=i,
                                             last_token=i))
            elif token.lemmas & {"ведомство"} and token.pos == "NOUN" and memory.last_body \
                    and not (i + 1 < len(tokens) and tokens[i + 1].text[:1].isupper()):
                # "в ведомстве подчеркнули", "по данным ведомства": the body the article last named
                mentions.append(_Mention(token.start, token.stop, (memory.last_body,), "organization", weak=True,
                                         first_token=i, last_token=i))
            elif word == "там" and memory.previous and i + 1 < len(tokens) and tokens[i + 1].lemmas & CUE_VERBS:
                # "Там настаивают…": the body the previous sentence quoted
                body = next((s for s in memory.previous if s.type == "organization"), None)
                if body is not None:
                    mentions.append(_Mention(token.start, token.stop, (body.name,), "organization", weak=True,
                                             first_token=i, last_token=i))
            elif token.lemmas & COLLECTIVE and token.pos in ("NOUN", "PROPN") and self._plural(token, tokens, i):
                last = i + 1 if i + 1 < len(tokens) and tokens[i + 1].lemmas & {"государство"} else i
                mentions.append(_Mention(token.start, tokens[last].stop, self._pair(token, memory), "person",
                                         weak=True, first_token=i, last_token=last))
            elif token.pos in ("NOUN", "PROPN") and memory.last_person \
                    and token.lemmas & (set(self._role_heads) | GENERIC_PERSON) \
                    and not (i + 1 < len(tokens) and tokens[i + 1].text[:1].isupper()):
                # a bare role noun ("Замминистра назвал…", "— отметил дипломат"): the last person named who holds it
                holders = {n for lemma in token.lemmas for n in self._role_heads.get(lemma, ())}
                name = memory.last_person if memory.last_person in holders or token.lemmas & GENERIC_PERSON \
                    else next((n for n in reversed(memory.person_order) if n in holders), None)
                if name:
                    mentions.append(_Mention(token.start, token.stop, (name,), "person", weak=True,
                                             first_token=i, last_token=i))
        # a descriptor taken into a name's mention ("политолог" of "политолог Илья Ростов") is no mention of its own
        mentions = [m for m in mentions if not any(o is not m and o.start <= m.start and m.end <= o.end
                                                   and (o.end - o.start) > (m.end - m.start) for o in mentions)]
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
        single = last or first or normal
        return memory.full_names.get(single, memory.full_names.get(normal, normal))

    @staticmethod
    def _pronoun(number: str, memory: _Article) -> tuple[str, ...]:
        people = [s.name for s in memory.previous]
        if not people:
            return ()
        return tuple(people) if number == "many" else (people[0],)

    def _pair(self, token: Token, memory: _Article) -> tuple[str, ...]:
        """The two sides: the presidents for "Президенты", else the most cited Russian and foreign person so far."""
        presidents = tuple(PRESIDENT_OF.values())
        if token.lemmas & {"президент", "лидер", "глава"}:
            return presidents
        ranked = sorted(memory.article_counts, key=lambda n: (-memory.article_counts[n], n not in presidents))
        russian = [n for n in ranked if self.roles.side_of(n) == "russia" and self.roles.is_person(n)]
        foreign = [n for n in ranked if self.roles.side_of(n) in ("us", "other") and self.roles.is_person(n)]
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
            while i >= 0 and (tokens[i].pos in ("ADJ", "NOUN", "PROPN", "X", "ADP") or tokens[i].text in "«»\"")\
                    and m.first_token - i <= 9:
                if tokens[i].lemmas & DESCRIPTORS:
                    while i > 0 and tokens[i - 1].pos == "ADJ":
                        i -= 1
                    m.start, m.first_token = tokens[i].start, i
                    break
                i -= 1
        return merged

    # -- attribution ------------------------------------------------------------------------------------------

    @staticmethod
    def _quoted(text: str, opened: bool) -> list[tuple[int, int]]:
        """Character ranges inside quotation marks (the quoted words: a name there is not the one who speaks)."""
        ranges, start = [], 0 if opened else None
        for i, char in enumerate(text):
            if start is None and char in "«„" or start is None and char == "\"":
                start = i
            elif start is not None and (char in "»“”" or char == "\"" and i != start):
                ranges.append((start, i + 1))
                start = None
        if start is not None:
            ranges.append((start, len(text)))
        return ranges

    def _attribute(self, text: str, analysis: Analysis, mentions: list[_Mention],
                   opened: bool) -> tuple[list[Source], list[Source]]:
        """(sources, relayers): the mentions that stand where a source stands, the one who speaks first; and
        those that only relay the speaker's words ("По данным Кремля, Байден…"), already in its relayed_by."""
        tokens = analysis.tokens
        quoted = self._quoted(text, opened)
        outside = [m for m in mentions if not any(a <= m.start and m.end <= b for a, b in quoted)]
        cues = [i for i, t in enumerate(tokens) if (t.lemmas & (CUE_VERBS | ORDER_VERBS) or _exchanges_views(tokens, i))
                and t.pos in ("VERB", "ADJ", "AUX") and not any(a <= t.start < b for a, b in quoted)]
        # the first "что", colon or quote after a cue opens what was said: names after it are its content
        boundary = next((i for i, t in enumerate(tokens) if cues and i > cues[0]
                         and (t.text.lower() in ("что", "чтобы") or t.text == ":")), len(tokens))
        according = [m for m in outside if self._after_according_to(m, tokens)]
        subjects: list[_Mention] = []
        colon = text.find(":")
        if 0 < colon < 40:  # a headline "Кремль: …", "Песков: Путин говорил…"
            subjects = [m for m in outside if m.end <= colon and m.first_token <= 1][:1]
        for cue in [] if subjects else cues:
            # "…, — сказал Песков", "…, заявил посол": the speaker follows the verb, even after the "что" of the
            # words it reports; after a dash nothing before the verb is its subject
            inverted = cue > 0 and tokens[cue - 1].text in ",—–"
            if cue > boundary and not inverted:
                continue
            candidates = [m for m in outside if m not in according]
            before = [] if tokens[cue - 1].text in "—–" else [
                m for m in candidates if m.last_token < cue and self._subject_case(m, tokens)
                and not self._clause_between(tokens, m.last_token + 1, cue)]
            after = [m for m in candidates if 0 < m.first_token - cue <= 4 and self._subject_case(m, tokens)
                     and not self._clause_between(tokens, cue + 1, m.first_token)]
            located = [m for m in candidates if m.first_token > 0 and abs(m.first_token - cue) <= 4
                       and tokens[m.first_token - 1].text.lower() in ("в", "во") and tokens[m.first_token].case == "Loc"
                       and not self._clause_between(tokens, min(cue, m.first_token) + 1, max(cue, m.first_token))]
            chosen = before[-1:] or [m for m in located if m.first_token < cue][-1:] or after[:1] or located[:1]
            if chosen and tokens[cue].lemmas & ORDER_VERBS and not set(chosen[0].names) <= PRESIDENT_NAMES:
                continue  # an institution's order is an act, not a statement
            if chosen:
                subjects = self._with_conjuncts(chosen[0], candidates, tokens)
                break
        sources: list[Source] = []
        for m in [*subjects, *[m for m in according if m not in subjects]]:
            for name in m.names:
                if name not in {s.name for s in sources}:
                    kind = "anonymous" if any(name == g.name for g in self.roles.anonymous) else m.kind
                    sources.append(Source(name, text[m.start:m.end], m.start, m.end, kind))
        speaking = len({n for m in subjects for n in m.names})
        if subjects and len(sources) > speaking:
            # "По данным Кремля, Байден…": the institution after "по данным" relays the subject's words
            relayers = sources[speaking:]
            return [replace(s, relayed_by=relayers[0].name) for s in sources[:speaking]], relayers
        return sources, []

    @staticmethod
    def _clause_between(tokens: tuple[Token, ...], start: int, stop: int) -> bool:
        """A "что", "который", colon or another verb of saying between two tokens: they are in different clauses."""
        return any(t.text.lower() in CLAUSE_WORDS or t.text in ":;" or t.lemmas & CUE_VERBS and t.pos == "VERB"
                   for t in tokens[start:stop])

    @staticmethod
    def _subject_case(m: _Mention, tokens: tuple[Token, ...]) -> bool:
        head = tokens[m.first_token if m.head_token is None else m.head_token]
        latin = head.case is None and bool(re.match(r"[A-Za-z]", head.text))  # "Reuters", "CNN": no case
        initial_role = m.weak and m.first_token == 0 and head.case is None  # "Замминистра назвал…"
        return head.case == "Nom" or latin or initial_role or head.text.lower() in ("он", "она", "они", "там")

    @staticmethod
    def _after_according_to(m: _Mention, tokens: tuple[Token, ...]) -> bool:
        """"по словам X", "по данным X", "по оценкам отраслевых аналитиков", "согласно заявлению X"."""
        i = m.first_token - 1
        while i >= 0 and tokens[i].pos == "ADJ":
            i -= 1
        if i >= 0 and tokens[i].lemmas & {"согласно"}:
            return True
        if i >= 1 and tokens[i].lemmas & {"заявление", "сообщение", "изложение"} \
                and tokens[i - 1].text.lower() in ("согласно", "в", "во"):
            return True  # "согласно заявлению Белого дома", "говорится в сообщении Кремля"
        if i >= 0 and tokens[i].text.lower() == "по" and m.last_token + 1 < len(tokens):
            return bool(tokens[m.last_token + 1].lemmas & ACCORDING_TO)  # "По его словам"
        return i >= 1 and bool(tokens[i].lemmas & ACCORDING_TO) and tokens[i - 1].text.lower() == "по"

    @staticmethod
    def _with_conjuncts(first: _Mention, mentions: list[_Mention], tokens: tuple[Token, ...]) -> list[_Mention]:
        """"Путин и Байден": the mentions joined to the subject by "и", in the order of the text."""
        def joined(a: _Mention, b: _Mention) -> bool:
            return b.first_token == a.last_token + 2 and tokens[a.last_token + 1].text.lower() == "и"

        group = [first]
        for m in sorted(mentions, key=lambda m: -m.start):
            if joined(m, group[0]):
                group.insert(0, m)
        for m in sorted(mentions, key=lambda m: m.start):
            if joined(group[-1], m):
                group.append(m)
        return group

    def _gate(self, sources: list[Source], relayers: list[Source], speaker: str, memory: _Article,
              mentions: list[_Mention], text: str, may_continue: bool) -> list[Source]:
        """Sources that agree with the speaker class (GUIDELINES §9.1), the class's own source first.

        A sentence whose class names someone the attribution missed takes that one from its mentions, else from
        the previous sentence (a continued quote or argument), else without a mention.
        """
        continued = [replace(s, mention=None, start=None, end=None) for s in memory.previous]
        if speaker in PRESIDENT_OF:
            wanted = PRESIDENT_OF[speaker]
            main = next((s for s in sources if s.name == wanted), None)
            named = next((m for m in mentions if m.names == (wanted,)), None)
            if main is None and named is not None:  # "Ушаков сообщил, что Байден заверил…": Biden, relayed
                main = Source(wanted, text[named.start:named.end], named.start, named.end, "person")
            if main is None:  # "С российской стороны предложено…", a continued quote: the president, not named
                previous = next((s for s in continued if s.name == wanted), None)
                main = previous or Source(wanted, None, None, None, "person")
            side = self.roles.side_of(wanted)
            relayers = [s for s in sources if s.name != wanted and self.roles.side_of(s.name) == side]
            if relayers and main.relayed_by is None:
                main = replace(main, relayed_by=relayers[0].name)
            return [main, *[s for s in sources if s.name != wanted and s not in relayers]]
        if speaker == "both":
            people = [s for s in sources if s.type == "person" and s.name]
            relayer = next((s.name for s in sources if s not in people), None)
            if len(people) < 2:
                pair = next((m for m in mentions if len(m.names) == 2), None)
                if pair is not None:
                    people = [Source(n, text[pair.start:pair.end], pair.start, pair.end, "person") for n in pair.names]
                elif len(continued) >= 2 and all(s.type == "person" for s in continued[:2]):
                    people = continued[:2]
                else:
                    relayer = relayer or (people[0].name if people else None)
                    people = [Source(n, None, None, None, "person") for n in self._pair_names(memory, "сторона")]
            if relayer:
                people = [replace(s, relayed_by=s.relayed_by or relayer) for s in people]
            return people
        sides = {"russia_official": ("russia",), "us_official": ("us",)}.get(speaker, ("other", None))
        # "По словам министра, Киев…", "По данным CNN, Вашингтон…": for an official or a third party the one
        # after "по словам" is the source and what follows is what they said (a president's words are relayed)
        relaying = [replace(s, relayed_by=None) for s in relayers if self.roles.side_of(s.name) in sides]
        if relaying:
            return relaying
        matching = [s for s in sources if self.roles.side_of(s.name) in sides]
        if matching:
            return [*matching, *[s for s in sources if s not in matching]]
        candidates = [m for m in mentions if self.roles.side_of(m.names[0]) in sides and sides != ("other", None)
                      and (not m.weak or m.names[0] in self._places and m.first_token == 0)]
        if candidates:  # "Белый дом впервые возложил…": the one body of the class the sentence names
            m = candidates[0]
            return [Source(m.names[0], text[m.start:m.end], m.start, m.end, m.kind), *sources]
        if sources:
            return sources
        if may_continue and continued and self.roles.side_of(continued[0].name) in sides:
            return continued  # the official or body the previous sentence quoted goes on
        return []

    def _pair_names(self, memory: _Article, lemma: str) -> tuple[str, ...]:
        return self._pair(Token(lemma, 0, 0, "NOUN", None, frozenset({lemma})), memory)

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

    def extract(self, sentences: list[str], speakers: list[str] | None = None, date: str | None = None,
                confidences: list[float] | None = None) -> list[SentenceSources]:
        """Sources and quote kind per sentence; `speakers` (gold or predicted) gate and order them when given.

        With `confidences` (the predicted speaker's probability), a class never gives sources alone: a sentence
        whose class is uncertain (below `self.min_confidence`) needs an attributed mention, a continued quote or
        the same class as the sentence before; a confident one may also rest on words that report speech.
        """
        day = _parse_day(date)
        memory = _Article()
        analyses = self.analyzer.analyze_article(tuple(sentences))
        memory.article_counts = self._article_people(analyses, day)
        results = []
        in_link_list = False
        for number, (text, analysis) in enumerate(zip(sentences, analyses)):
            speaker = speakers[number] if speakers is not None else None
            # the headlines after a link label, up to a line that ends like a sentence, belong to other pages
            in_link_list = in_link_list and not text.rstrip().endswith(SENTENCE_END)
            furniture = in_link_list or bool(FURNITURE_LABEL.match(text))
            in_link_list = in_link_list or bool(LINK_LIST_LABEL.match(text))
            mentions = self._mentions(text, analysis, memory, day)
            continues = memory.quote_open or text.lstrip()[:1] in DASHES
            sources, relayers = self._attribute(text, analysis, mentions, memory.quote_open)
            quote = self._quote_kind(text, memory)
            # the same class as the sentence before, which quoted someone: an argument that goes on (GUIDELINES §3 step 4)
            same_voice = number > 0 and speakers is not None and speakers[number - 1] == speaker and bool(memory.previous)
            uncertain = confidences is not None and confidences[number] < self.min_confidence
            evidence = bool(sources) or continues or same_voice
            if confidences is not None and not uncertain:
                # a confident class still needs the sentence to report speech: narration that names an official
                # ("Байден подписал указ") gives no source on the class alone
                evidence = evidence or quote == "direct" or self._reports_speech(analysis, speaker)
            if speaker == "none" or furniture or confidences is not None and not evidence:
                sources = []
            elif speaker is not None:
                if confidences is not None:
                    speaker = self._text_speaker(sources, relayers, mentions, speaker, confidences[number], analysis.tokens)
                sources = self._gate(sources, relayers, speaker, memory, mentions, text, continues or not uncertain)
            elif continues and memory.previous and (not sources or self._only_relays(sources, memory)):
                # a continued quote: the previous sentence's sources, not named here ("— Поэтому…, — отметили в
                # Кремле": the Kremlin relays the president of the sentence before)
                relayer = sources[0].name if sources else None
                sources = [replace(s, mention=None, start=None, end=None, relayed_by=relayer or s.relayed_by)
                           for s in memory.previous]
            sources = self._relay_unnamed(text, sources, memory)
            self._remember(memory, mentions, sources)
            results.append(SentenceSources(tuple(sources), quote if sources else "none"))
        return results

    def _class_of(self, sources: list[Source]) -> str:
        """The speaker class the text's own attribution names: a president, the two sides ("Путин и Байден",
        "Стороны", a Russian and an American person joined as subjects), or the side of the first source."""
        names = [s.name for s in sources]
        if len(sources) >= 2:
            one_mention = sources[1].start is not None and sources[1].start == sources[0].start  # "Стороны"
            presidents = set(names[:2]) == PRESIDENT_NAMES
            heads = {self.roles.side_of(n) for n in names[:2]} == {"russia", "us"} \
                and all(s.type == "person" for s in sources[:2])
            if one_mention or presidents or heads:
                return "both"
        if names[0] in CLASS_OF_PRESIDENT:
            return CLASS_OF_PRESIDENT[names[0]]
        return {"russia": "russia_official", "us": "us_official"}.get(self.roles.side_of(names[0]) or "", "other")

    def _text_speaker(self, sources: list[Source], relayers: list[Source], mentions: list[_Mention], speaker: str,
                      confidence: float, tokens: tuple[Token, ...]) -> str:
        """The class that gates the sentence: the predicted one, unless it is unsure (below
        TEXT_OVER_CLASS_BELOW) and the text attributes the statement to someone of another class.

        The text's class is the one its attributed sources name (`_class_of`). The predicted class stays when any
        attributed source or relayer belongs to it, when a president's class names its president where a subject
        can stand, even in the reported clause ("Ушаков сообщил, что Путин…": the president, relayed), and when a
        `both` sentence names the two sides so ("Помощник президента добавил, что главы государств…")."""
        if not sources or confidence >= TEXT_OVER_CLASS_BELOW:
            return speaker
        said = self._class_of(sources)
        if said == "both":
            return said  # "Путин и Байден, по словам Ушакова, согласились…": joint subjects are the two sides
        if said == speaker or any(self._class_of([s]) == speaker for s in [*sources, *relayers]):
            return speaker
        # a mention that can be a subject: in the nominative, or opening the sentence (where the tagger often
        # reads a capitalised "Президенты" as a genitive); "предложил Путину", "призвала Байдена" do not count
        subjects = [m for m in mentions if m.first_token == 0 or self._subject_case(m, tokens)]
        named = {n for m in subjects for n in m.names}
        if PRESIDENT_OF.get(speaker) in named:
            return speaker
        if speaker == "both" and (any(len(m.names) == 2 for m in subjects) or PRESIDENT_NAMES <= named):
            return speaker
        return said

    @staticmethod
    def _reports_speech(analysis: Analysis, speaker: str) -> bool:
        """Words that report what someone said, whether or not the rules found who: a verb of saying or stance
        ("договорились", "было заявлено"), its passive in -ся ("обсуждалась", "отмечается"), "по словам",
        "по его данным", "согласно заявлению", "как следует из сообщений", "речь зашла о". Narration that
        names an official without them ("Байден подписал указ") reports a fact, not a statement; an order
        reports one only for a president's class."""
        tokens = analysis.tokens
        cues = CUE_VERBS | ORDER_VERBS if speaker in PRESIDENT_OF else CUE_VERBS
        for i, token in enumerate(tokens):
            before = {t.text.lower() for t in tokens[max(0, i - 2):i]}
            passive = any(lemma.endswith("ся") and lemma[:-2] in cues for lemma in token.lemmas)
            saying = token.pos in ("VERB", "ADJ", "AUX") and bool(token.lemmas & cues or passive
                                                                 or _exchanges_views(tokens, i))
            according_to = bool(token.lemmas & ACCORDING_TO) and "по" in before or token.text.lower() == "согласно"
            from_statement = bool(token.lemmas & STATEMENT_NOUNS) and bool({"согласно", "из"} & before)
            talk_turned = bool(token.lemmas & {"речь"}) and i + 1 < len(tokens) and bool(tokens[i + 1].lemmas
                                                                                         & {"зайти", "идти"})
            if saying or according_to or from_statement or talk_turned:
                return True
        return False

    def _only_relays(self, sources: list[Source], memory: _Article) -> bool:
        """An institution where the previous sentence quoted a person of its side: it relays that person."""
        previous = memory.previous[0]
        return all(s.type == "organization" for s in sources) and previous.type == "person" \
            and self.roles.side_of(previous.name) == self.roles.side_of(sources[0].name)

    def _article_people(self, analyses: list[Analysis], day: dt.date | None) -> Counter:
        """How often the article names each person: who "Стороны" are depends on the whole article."""
        counts: Counter = Counter()
        for analysis in analyses:
            names = {name for _, _, name, kind in self._match_phrases(analysis.tokens, day) if kind in ("person", "role")}
            names |= {f"{e.first} {e.last}" for e in analysis.entities if e.type == "PER" and e.first and e.last}
            counts.update(names)
        return counts

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
        # the main body the sentence quotes (not a country, not one named in what it said)
        body = next((s.name for s in sources if s.type == "organization" and s.name not in self._places), None)
        memory.last_body = body or memory.last_body
        for m in mentions:
            for name in m.names:
                if m.kind != "person" or m.weak:
                    continue
                memory.last_person = name
                memory.person_order.append(name)
                parts = name.split()
                if len(parts) == 2:
                    memory.full_names[parts[1]] = name
                if not self.roles.is_person(name) and len(parts) == 2:
                    memory.last_expert = name
        memory.previous = tuple(sources)


def _exchanges_views(tokens: tuple[Token, ...], i: int) -> bool:
    """"обменялись (известными) позициями": an exchange whose object, within three words, is a view."""
    return bool(tokens[i].lemmas & EXCHANGE_VERBS) and any(t.lemmas & VIEWS for t in tokens[i + 1:i + 4])


def _parse_day(date: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(date)[:10]) if date else None
    except ValueError:
        return None
