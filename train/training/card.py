"""The model card (`README.md` in the run directory): huggingface_hub's ModelCard from a Markdown template."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from train.atomic import write_file_atomically
from train.config import Config
from train.data.scheme import LabelScheme
from train.evaluation.metrics import HEADLINE_METRICS, LabelScores, Scores
from train.modeling.encoders import encoder_spec
from train.pages import markdown_table

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md.j2"


def _per_label_table(per_label: dict[str, LabelScores]) -> str:
    return markdown_table(["label", "precision", "recall", "F1", "support"], [
        [label, f"{m.precision:.2f}", f"{m.recall:.2f}", f"{m.f1:.2f}", m.support] for label, m in per_label.items()])


def cv_section(cv: dict | None) -> str:
    if not cv:
        return ("Not run yet: `make cv` adds k-fold x seeds results here; they are the numbers to trust, "
                "more than one test split.")
    keys = list(HEADLINE_METRICS)[:5]
    table = markdown_table(["setting", *(HEADLINE_METRICS[k] for k in keys)], [
        [setting, *(f"{summary[k]['mean']:.3f} ± {summary[k]['sd']:.3f}" for k in keys)]
        for setting, summary in cv["summary"].items()])
    text = (f"{len(cv['seeds'])} seed(s) on all {cv['n_sentences']} labelled sentences (mean ± sd over the runs). "
            f"articles: {cv['n_folds']} folds grouped by article; events: each event family held out once "
            f"(leave-event-out, the measure that predicts new coverage); seed pages: the held-out family of real "
            f"7 December 2021 coverage alone.\n\n{table}")
    if "context_effect" in cv:
        effect = cv["context_effect"]["speaker_macro_f1"]
        text += (f"\n\nEffect of the previous-sentence context on speaker macro-F1: {effect['mean']:+.3f} ± "
                 f"{effect['sd']:.3f} (paired over {cv['context_effect']['n_pairs']} fold x seed runs).")
    return text


def _encoder(config: Config, encoder_record: dict | None) -> tuple[str, str]:
    """(what the encoder is and where it came from, what the heads read)."""
    spec = encoder_spec(config.model.encoder)
    text = spec.describe(config.model)
    if encoder_record:
        provenance = encoder_record.get("provenance") or {}
        if "weights_sha256" in provenance:
            text += (f" (weights file `{provenance['weights_file']}`, sha256 `{provenance['weights_sha256']}`; "
                     f"{provenance['vocabulary']}; licence {provenance['licence']})")
        if encoder_record.get("reason") and encoder_record["reason"] != "as configured":
            text += f". Encoder chosen because {encoder_record['reason']}"
    return text, spec.pooled(config.model)


def render_model_card(run_name: str, config: Config, metrics: dict, scheme: LabelScheme, label_table: str,
                      fingerprint: str = "", encoder_record: dict | None = None) -> str:
    encoder, pooled = _encoder(config, encoder_record)
    data = ModelCardData(language="ru", library_name="transformers", pipeline_tag="text-classification",
                         base_model=encoder_spec(config.model.encoder).recorded_name(config.model),
                         tags=["news", "topic-classification", "speaker-attribution", config.model.encoder])
    scores = {split: Scores.from_dict(metrics[split]) for split in ("validation", "test")}
    metrics_table = markdown_table(["split", "n", *HEADLINE_METRICS.values()], [
        [split, s.n_sentences, *(f"{v:.3f}" for v in s.headline().values())] for split, s in scores.items()])
    card = ModelCard.from_template(
        data, template_path=str(TEMPLATE), run_name=run_name, encoder=encoder, pooled=pooled,
        use_context=config.model.use_context, topics=", ".join(f"`{t}`" for t in scheme.topics),
        speakers=", ".join(f"`{s}`" for s in scheme.speakers),
        thresholds=", ".join(f"{t} {v:.2f}" for t, v in metrics["topic_thresholds"].items()),
        train_sentences=metrics["training"]["train_sentences"], fingerprint=fingerprint, label_table=label_table,
        metrics_table=metrics_table, topic_table=_per_label_table(scores["test"].topics.per_label),
        speaker_table=_per_label_table(scores["test"].speaker.per_label), cross_validation=cv_section(metrics.get("cv")),
        seconds=metrics["training"]["seconds"], epochs=metrics["training"]["epochs_run"],
        processes=metrics["training"]["processes"])
    return str(card)


def write_model_card(run_dir: Path, config: Config, metrics: dict, scheme: LabelScheme, label_table: str,
                     fingerprint: str = "", encoder_record: dict | None = None) -> None:
    text = render_model_card(run_dir.name.removesuffix(".partial"), config, metrics, scheme, label_table, fingerprint,
                             encoder_record)
    write_file_atomically(run_dir / "README.md", lambda temporary: temporary.write_text(text, encoding="utf-8"))
