"""The source extractor (train/sources/): the roles table, attribution, quote kinds, the speaker gate, metrics."""

import pytest

from train.sources.extract import SourceExtractor
from train.sources.metrics import score_sources
from train.sources.roles import RolesError, load_roles
from train.sources.schema import Source


@pytest.fixture(scope="module")
def extractor() -> SourceExtractor:
    return SourceExtractor(load_roles())


def names(result) -> list[str]:
    return [s.name for s in result.sources]


def test_every_source_mention_is_the_text_at_its_offsets(extractor):
    sentences = ["Пресс-секретарь Кремля Дмитрий Песков заявил, что Москва ждет ответа.",
                 "По словам Рябкова, разговор получился сложным.",
                 "«Мы надеемся, что до этого не дойдет», — добавил Ушаков."]
    for text, result in zip(sentences, extractor.extract(sentences)):
        assert result.sources, text
        for source in result.sources:
            assert text[source.start:source.end] == source.mention


def test_the_subject_of_the_verb_of_saying_is_the_source_not_the_names_in_what_was_said(extractor):
    [result] = extractor.extract(["Пресс-секретарь Кремля Дмитрий Песков заявил, что Байден и НАТО ошибаются."])
    assert names(result) == ["Дмитрий Песков"] and result.quote == "indirect"
    assert result.sources[0].mention == "Пресс-секретарь Кремля Дмитрий Песков" and result.sources[0].type == "person"


def test_a_role_alone_resolves_through_the_roles_table_in_the_nominative(extractor):
    [result] = extractor.extract(["Об этом сообщил помощник президента России."])
    assert names(result) == ["Юрий Ушаков"]
    [genitive] = extractor.extract(["По словам госсекретаря США, ответ будет жестким."])
    assert names(genitive) == ["Энтони Блинкен"]


def test_dash_quotes_are_direct_and_reported_speech_is_indirect(extractor):
    results = extractor.extract(["«Прорыва нет, прогресса тоже нет», — сказал Рябков журналистам.",
                                 "Рябков считает, что прогресса нет."])
    assert [names(r) for r in results] == [["Сергей Рябков"], ["Сергей Рябков"]]
    assert [r.quote for r in results] == ["direct", "indirect"]


def test_an_institution_that_relays_a_presidents_words_is_relayed_by(extractor):
    text = "«Президент России подчеркнул важность гарантий безопасности», — отметили в Кремле."
    [result] = extractor.extract([text], ["putin"])
    assert names(result) == ["Владимир Путин"] and result.sources[0].relayed_by == "Кремль"
    assert result.quote == "direct"


def test_a_continued_quote_takes_the_previous_sentences_source_without_a_mention(extractor):
    sentences = ["Путин заявил, что НАТО наращивает военный потенциал.",
                 "— Поэтому Россия заинтересована в гарантиях, — отметили в Кремле."]
    results = extractor.extract(sentences, ["putin", "putin"])
    assert names(results[1]) == ["Владимир Путин"] and results[1].sources[0].mention is None
    assert results[1].quote == "direct"
    ungated = extractor.extract(sentences)  # the dash tells a continuation without any speaker class
    assert names(ungated[1]) == ["Владимир Путин"]


def test_the_speaker_class_gates_the_sources(extractor):
    text = "Песков заявил, что переговоры прошли конструктивно."
    [none] = extractor.extract([text], ["none"])
    assert none.sources == () and none.quote == "none"
    [both] = extractor.extract(["Президенты договорились продолжить контакты."], ["both"])
    assert names(both) == ["Владимир Путин", "Джо Байден"] and both.sources[0].mention == "Президенты"


def test_pronouns_and_bare_descriptors_resolve_to_the_person_just_quoted(extractor):
    sentences = ["Политолог Андрей Смирнов считает, что звонок важен.",
                 "По его словам, прорывов ждать не приходится.",
                 "«Это сигнал», — говорит эксперт."]
    results = extractor.extract(sentences, ["other"] * 3)
    assert [names(r) for r in results] == [["Андрей Смирнов"]] * 3
    assert results[0].sources[0].mention == "Политолог Андрей Смирнов"
    assert results[1].sources[0].mention == "его"


def test_anonymous_groups_take_their_fixed_name(extractor):
    [result] = extractor.extract(["Аналитики считают, что санкции неизбежны."])
    assert names(result) == ["эксперты"] and result.sources[0].type == "anonymous"


def test_a_user_table_replaces_and_adds_entries_and_roles_hold_only_in_their_dates(tmp_path):
    table = tmp_path / "roles.yaml"
    table.write_text("people:\n"
                     "  - name: Джен Псаки\n    side: us\n    aliases: [Псаки]\n    roles: []\n"
                     "  - name: Карин Жан-Пьер\n    side: us\n    aliases: [Жан-Пьер]\n"
                     "    roles: [пресс-секретарь Белого дома]\n    from: 2022-05-13\n", encoding="utf-8")
    roles = load_roles(table)
    assert roles.version.startswith("2021-2022.1+roles.yaml@")
    assert next(p for p in roles.people if p.name == "Джен Псаки").roles == ()
    extractor = SourceExtractor(roles)
    text = ["Пресс-секретарь Белого дома заявила, что ответ будет жестким."]
    assert names(extractor.extract(text, date="2022-06-01")[0]) == ["Карин Жан-Пьер"]
    assert names(extractor.extract(text, date="2021-12-01")[0]) == []  # nobody in the table held it then


def test_a_bad_roles_table_names_the_file_and_the_entry(tmp_path):
    table = tmp_path / "roles.yaml"
    table.write_text("people:\n  - name: Кто-то\n    side: mars\n", encoding="utf-8")
    with pytest.raises(RolesError, match=r"roles.yaml: people entry 1 \(Кто-то\): side 'mars'"):
        load_roles(table)
    with pytest.raises(RolesError, match="not found"):
        load_roles(tmp_path / "missing.yaml")


def source(name: str, start: int | None = None, end: int | None = None) -> Source:
    return Source(name, None if start is None else "x" * (end - start), start, end, "person")


def test_source_scores_on_known_cases():
    gold = [[source("Дмитрий Песков", 0, 6)], [source("Владимир Путин"), source("Джо Байден")], [],
            [source("Кремль", 3, 9)]]
    predicted = [[source("Дмитрий Песков", 0, 6)], [source("Джо Байден")], [source("Белый дом")],
                 [source("Кремль", 0, 6)]]
    scores = score_sources(gold, ["direct", "indirect", "none", "indirect"],
                           ["russia_official", "both", "none", "russia_official"],
                           predicted, ["direct", "direct", "indirect", "indirect"])
    assert scores.name_precision == pytest.approx(3 / 4) and scores.name_recall == pytest.approx(3 / 4)
    assert scores.mention_f1 == pytest.approx(0.5)  # (0, 6) matches exactly in the first sentence only
    assert scores.mention_overlap_f1 == pytest.approx(1.0)  # (0, 6) overlaps (3, 9) in the last
    assert scores.quote_accuracy == pytest.approx(0.5)
    assert scores.first_source_accuracy == pytest.approx(2 / 3) and scores.attributed == 3
    assert scores.none_without_source == 0.0 and scores.unattributed == 1


def test_an_uncertain_speaker_class_needs_evidence_of_its_own():
    uncertain = SourceExtractor(load_roles(), min_confidence=0.5)
    sentences = ["Отдельно обсуждался обмен заключенными.", "Песков заявил, что переговоры прошли хорошо."]
    sure = uncertain.extract(sentences, ["putin", "russia_official"], confidences=[0.9, 0.9])
    assert names(sure[0]) == ["Владимир Путин"]  # a confident class with words that report speech gives its source
    unsure = uncertain.extract(sentences, ["putin", "russia_official"], confidences=[0.3, 0.3])
    assert names(unsure[0]) == [] and unsure[0].quote == "none"
    assert names(unsure[1]) == ["Дмитрий Песков"]  # attributed in the sentence itself


def test_a_confident_class_gives_no_source_to_narration_that_reports_no_speech():
    gated = SourceExtractor(load_roles(), min_confidence=0.5)
    [signed] = gated.extract(["Президент России в четверг подписал указ о новых назначениях."], ["putin"],
                             confidences=[0.9])
    assert signed.sources == () and signed.quote == "none"
    [gold] = gated.extract(["Президент России в четверг подписал указ о новых назначениях."], ["putin"])
    assert names(gold) == ["Владимир Путин"]  # a labelled class is not second-guessed


@pytest.mark.parametrize("text", ["Речь зашла и о поставках зерна.",
                                  "Согласно совместному заявлению, рабочие группы начнут работу весной.",
                                  "Как следует из сообщений обеих сторон, встреча затянулась на три часа."])
def test_words_that_report_speech_let_a_confident_class_name_its_source(text):
    gated = SourceExtractor(load_roles(), min_confidence=0.5)
    [result] = gated.extract([text], ["both"], confidences=[0.9])
    assert names(result) == ["Владимир Путин", "Джо Байден"]


def test_a_link_to_another_story_quotes_nobody_whatever_the_class(extractor):
    sentences = ["Читайте также: Лавров: Москва ответит на новые санкции зеркально",
                 "Также по теме: Салливан назвал условия продолжения консультаций",
                 "Теги: Россия, США, Лавров, санкции"]
    assert all(r.sources == () for r in extractor.extract(sentences))
    assert all(r.sources == () for r in extractor.extract(sentences, ["russia_official", "us_official", "other"]))


def test_an_order_is_a_statement_of_a_president_only(extractor):
    [body] = extractor.extract(["Министерство обороны распорядилось перебросить технику на полигон."])
    assert body.sources == ()
    [president] = extractor.extract(["Путин распорядился продлить программу еще на год."])
    assert names(president) == ["Владимир Путин"]
    gated = SourceExtractor(load_roles(), min_confidence=0.5)
    [predicted] = gated.extract(["Госдепартамент распорядился сократить штат консульства."], ["us_official"],
                                confidences=[0.9])
    assert predicted.sources == ()


def test_an_exchange_reports_talk_only_when_views_are_exchanged(extractor):
    [acts] = extractor.extract(["Весной Токио и Сеул обменялись задержанными и высылками консулов."])
    assert acts.sources == ()
    [talk] = extractor.extract(["Министры обменялись мнениями о ценах на энергоносители."], ["both"])
    assert len(talk.sources) == 2 and talk.sources[0].mention == "Министры"


def test_headlines_listed_after_a_link_label_quote_nobody(extractor):
    sentences = ["Эксперт добавил, что торговля вряд ли восстановится быстро.", "Читайте также",
                 "Лавров: Москва не откажется от своих требований", "Ушаков: график встреч пока не согласован",
                 "Песков заявил, что Кремль не комментирует слухи."]
    results = extractor.extract(sentences, ["other", "none", "russia_official", "russia_official", "russia_official"])
    assert [names(r) for r in results[2:]] == [[], [], ["Дмитрий Песков"]]  # the list ends with a full sentence


def test_an_unsure_class_gives_way_to_the_speaker_the_text_names():
    gated = SourceExtractor(load_roles(), min_confidence=0.5)
    text = ["Лавров заявил, что Белый дом затягивает ответ на российские предложения."]
    [unsure] = gated.extract(text, ["us_official"], confidences=[0.4])
    assert names(unsure)[:1] == ["Сергей Лавров"]  # the subject of the verb of saying is Russian
    [sure] = gated.extract(text, ["us_official"], confidences=[0.9])
    assert names(sure)[:1] == ["Белый дом"]  # a confident class keeps its own source first
    [gold] = gated.extract(text, ["us_official"])
    assert names(gold)[:1] == ["Белый дом"]  # and a labelled class is never second-guessed


def test_a_presidents_class_stays_when_he_is_a_subject_of_the_reported_clause():
    gated = SourceExtractor(load_roles(), min_confidence=0.5)
    [relayed] = gated.extract(["Ушаков сообщил, что Путин предложил продолжить контакты экспертов."], ["putin"],
                              confidences=[0.3])
    assert names(relayed)[:1] == ["Владимир Путин"] and relayed.sources[0].relayed_by == "Юрий Ушаков"
    [addressed] = gated.extract(["Рябков сообщил, что итоги консультаций доложат Путину до конца месяца."],
                                ["putin"], confidences=[0.3])
    assert names(addressed)[:1] == ["Сергей Рябков"]  # Putin only as the addressee: the text's speaker goes first


def test_the_two_sides_named_as_subjects_are_both_and_a_single_official_is_not():
    gated = SourceExtractor(load_roles(), min_confidence=0.5)
    [sides] = gated.extract(["Стороны, как уточнил Ушаков, условились о новом раунде консультаций."], ["both"],
                            confidences=[0.4])
    assert names(sides)[:2] == ["Владимир Путин", "Джо Байден"]
    [aide] = gated.extract(["Ушаков уточнил, что график консультаций пока не утвержден."], ["both"],
                           confidences=[0.4])
    assert names(aide)[:1] == ["Юрий Ушаков"]
    [pair] = gated.extract(["Путин и Байден, по словам Ушакова, согласились продолжить диалог."], ["biden"],
                           confidences=[0.4])
    assert names(pair)[:2] == ["Владимир Путин", "Джо Байден"]  # the text names both sides: `both`, Russia first


def test_the_bare_word_vedomstvo_is_the_body_the_article_last_quoted(extractor):
    sentences = ["Минобороны России сообщило о завершении учений на севере.",
                 "В ведомстве уточнили, что техника вернется в пункты постоянной дислокации к пятнице."]
    results = extractor.extract(sentences, ["russia_official", "russia_official"])
    assert names(results[1])[:1] == ["Минобороны России"] and results[1].sources[0].mention == "ведомстве"
    gated = SourceExtractor(load_roles(), min_confidence=0.5)
    unsure = gated.extract(sentences, ["russia_official", "us_official"], confidences=[0.9, 0.3])
    assert names(unsure[1])[:1] == ["Минобороны России"]  # a mention in source position: evidence of its own
