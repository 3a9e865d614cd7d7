"""The model card (`README.md` in the run directory), in Hugging Face model-card style."""

from __future__ import annotations

from pathlib import Path

from train.atomic import write_file_atomically
from train.config import Config
from train.data.scheme import LabelScheme
from train.evaluation.metrics import HEADLINE_METRICS, headline


def _per_label_table(split_metrics: dict, head: str) -> list[str]:
    lines = ["| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, m in split_metrics[head]["per_label"].items():
        lines.append(f"| {label} | {m['precision']:.2f} | {m['recall']:.2f} | {m['f1']:.2f} | {m['support']} |")
    return lines


def cv_section(cv: dict | None) -> list[str]:
    if not cv:
        return ["Not run yet: `make cv` adds k-fold x seeds results here. With a dataset this small, "
                "cross-validation is the number to trust; the single test split above is a few sentences."]
    lines = [f"{cv['n_folds']} folds x {len(cv['seeds'])} seeds on all {cv['n_sentences']} labelled sentences "
             "(mean ± sd over the runs).", "", "| setting | " + " | ".join(label for label, _ in list(HEADLINE_METRICS.values())[:5]) + " |",
             "|---|" + "---|" * 5]
    for setting, summary in cv["summary"].items():
        cells = [f"{summary[key]['mean']:.3f} ± {summary[key]['sd']:.3f}" for key in list(HEADLINE_METRICS)[:5]]
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    if "context_effect" in cv:
        effect = cv["context_effect"]
        lines += ["", f"Effect of the previous-sentence context on speaker macro-F1: "
                      f"{effect['speaker_macro_f1']['mean']:+.3f} ± {effect['speaker_macro_f1']['sd']:.3f} "
                      f"(paired over {effect['n_pairs']} fold x seed runs)."]
    return lines


def write_model_card(run_dir: Path, config: Config, metrics: dict, scheme: LabelScheme, label_table: str) -> None:
    encoder = config.model.name_or_path
    if config.model.encoder == "navec":
        weights = (f"navec word vectors `{Path(encoder).stem}` (frozen, from the natasha package) read by a "
                   f"trainable BiGRU ({config.model.hidden_size} units per direction) with attention pooling")
    elif config.model.random_init:
        weights = "random initialisation (pipeline test only: these numbers say nothing about ruBERT)"
    else:
        weights = f"pretrained `{encoder}`"
    pooled = "pooled sentence vector (and the previous sentence's)" if config.model.encoder == "navec" \
        else "[CLS] vector"
    lines = [
        "---", "language: ru", "library_name: transformers", "pipeline_tag: text-classification",
        f"base_model: {encoder}", "tags: [news, topic-classification, speaker-attribution]", "---", "",
        f"# {run_dir.name.removesuffix('.partial')}", "",
        "Tags each sentence of a Russian news article with the **topics** it covers (multi-label) and the "
        "**speaker** whose position it reports (one of the speaker classes). "
        f"Encoder: {weights}, with a topics head (sigmoid, BCE) and a speaker head (softmax, cross-entropy) "
        f"on the {pooled}. Previous sentence as context: {'yes' if config.model.use_context else 'no'}.", "",
        "## Intended use", "",
        "Batch tagging of Russian-language coverage of the 7 December 2021 Putin–Biden call and similar "
        "Russia–US summit reporting, to count which positions and topics an outlet gives space to. "
        "Load with `Tagger.from_pretrained(path)` or `python -m train.prediction.run --model <this dir>`.", "",
        "## Labels", "",
        f"Topics: {', '.join(f'`{t}`' for t in scheme.topics)}.", "",
        f"Speakers: {', '.join(f'`{s}`' for s in scheme.speakers)}.", "",
        "Topic thresholds tuned on validation: " +
        ", ".join(f"{t} {v:.2f}" for t, v in metrics["topic_thresholds"].items()) + ".", "",
        "## Data", "",
        "Hand-labelled sentences of the seed articles (see `data/GUIDELINES.md`), split with iterative "
        "stratification:", "", "```", label_table, "```", "",
        "## Metrics", "",
        "| split | n | " + " | ".join(label for label, _ in HEADLINE_METRICS.values()) + " |",
        "|---|---|" + "---|" * len(HEADLINE_METRICS),
    ]
    for split in ("validation", "test"):
        cells = [f"{value:.3f}" for value in headline(metrics[split]).values()]
        lines.append(f"| {split} | {metrics[split]['n_sentences']} | " + " | ".join(cells) + " |")
    lines += ["", "Test, per topic:", "", *_per_label_table(metrics["test"], "topics"), "",
              "Test, per speaker:", "", *_per_label_table(metrics["test"], "speaker"), "",
              "## Cross-validation", "", *cv_section(metrics.get("cv")), "",
              "## Limitations", "",
              f"- Trained on {metrics['training']['train_sentences']} sentences from a handful of articles about "
              "one event: expect it to miss topics and speakers phrased differently in other coverage.",
              "- Test and validation splits have a handful of sentences per label; single-split scores swing "
              "widely with one sentence. Prefer the cross-validation numbers and `make report`'s bootstrap "
              "intervals.",
              "- The `other` speaker class has no training examples in the seed data.",
              "- Related-story links and captions are labelled as boilerplate (no topics, `none`), even when "
              "they mention a topic.", "",
              "## Training", "", f"Resolved configuration: `train_config.yaml`. Training took "
              f"{metrics['training']['seconds']} s, {metrics['training']['epochs_run']} epochs "
              f"({metrics['training']['processes']} process(es)). TensorBoard logs: `logs/`.", ""]
    text = "\n".join(lines)
    write_file_atomically(run_dir / "README.md", lambda temporary: temporary.write_text(text, encoding="utf-8"))
