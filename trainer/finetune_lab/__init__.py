"""Finetune Lab trainer: LoRA vs full finetuning of transformers causal LMs.

Entry point: ``python -m finetune_lab run --run-dir DIR [--resume]``.
The run folder contract (config.yaml, events.jsonl, status.json) is defined by the JSON
Schemas in the repo's ``schemas/`` folder.
"""

__version__ = "0.1.0"
