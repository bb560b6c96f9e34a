"""Recipes that build training data and checkpoints from the shared corpora.

``python -m recipes.bootstrap --data ../shared/data --out DIR`` builds the label-matched (synthetic)
multimodal composite from unimodal emotion corpora, trains the ``live`` preset and evaluates it. See
``docs/bootstrap.md`` and ``assets/MODEL_CARD.md``.
"""
