"""`make train`: fine-tune the tagger and publish models/<run>/ (works under `accelerate launch`)."""

from __future__ import annotations

import argparse
import sys

from accelerate import PartialState

from train.config import DEFAULT_CONFIG, load_config
from train.errors import UserError, exit_with
from train.logs import setup_command_logging
from train.training.fit import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fine-tune ruBERT with a topics head and a speaker head.")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. train.epochs=3 model.use_context=false")
    args = parser.parse_args(argv)
    setup_command_logging()
    try:
        config = load_config(args.config, args.overrides)
        result = train(config)
    except UserError as e:
        return exit_with(e)
    if not PartialState().is_main_process:
        return 0
    test = result.scores["test"]
    print(f"{result.run_dir}: test topic macro-F1 {test.topics.macro_f1:.3f}, "
          f"speaker macro-F1 {test.speaker.macro_f1:.3f}, combined {test.combined:.3f} "
          f"(n={test.n_sentences}; see {result.run_dir}/README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
