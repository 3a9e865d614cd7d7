"""The labelling scheme and the pure functions that encode labels for the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from train.errors import UserError


class SchemeError(UserError):
    """A label scheme file that cannot be used."""


@dataclass(frozen=True)
class LabelScheme:
    topics: tuple[str, ...]
    speakers: tuple[str, ...]

    @property
    def topic2id(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.topics)}

    @property
    def speaker2id(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.speakers)}

    def encode_topics(self, topics: list[str]) -> list[float]:
        """Topic names -> multi-hot vector in scheme order."""
        index = self.topic2id
        vector = [0.0] * len(self.topics)
        for topic in topics:
            if topic not in index:
                raise KeyError(f"unknown topic {topic!r}; known: {', '.join(self.topics)}")
            vector[index[topic]] = 1.0
        return vector

    def decode_topics(self, vector: list[float] | list[int] | list[bool]) -> list[str]:
        """Multi-hot vector -> topic names in scheme order."""
        if len(vector) != len(self.topics):
            raise ValueError(f"expected {len(self.topics)} topic values, got {len(vector)}")
        return [t for t, on in zip(self.topics, vector) if on]

    def encode_speaker(self, speaker: str) -> int:
        if speaker not in self.speaker2id:
            raise KeyError(f"unknown speaker {speaker!r}; known: {', '.join(self.speakers)}")
        return self.speaker2id[speaker]

    def decode_speaker(self, index: int) -> str:
        return self.speakers[index]


def load_scheme(path: str | Path) -> LabelScheme:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemeError(f"{path}: label scheme not found") from None
    except yaml.YAMLError as e:
        raise SchemeError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict) or set(raw) != {"topics", "speakers"}:
        raise SchemeError(f"{path}: expected exactly two sections, 'topics' and 'speakers'")
    for section in ("topics", "speakers"):
        if not isinstance(raw[section], dict) or not raw[section]:
            raise SchemeError(f"{path}: '{section}' must map each label id to its description")
    return LabelScheme(topics=tuple(raw["topics"]), speakers=tuple(raw["speakers"]))
