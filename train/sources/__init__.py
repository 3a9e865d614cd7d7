"""Named sources and quote kinds of sentences (data/GUIDELINES.md §9): the label types, the roles table and
the rule-based extractor. `train.sources.schema` imports nothing heavy, so the data validator can use it."""
